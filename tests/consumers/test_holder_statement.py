"""The holder's statement: every journal entry that touched the card (purchase, each release, a
refund's fee, the refund and its payment), in time order, matching the ledger entry for entry, with
each entry's hash; on the card page, in the API and as a PDF; for the holder only."""

import io
import re

import pypdf
import pytest
import time_machine
from django.test import Client

from consumers.disputes import dispute_decide, dispute_open
from consumers.services import card_purchase, redemption_reject, redemption_request
from escrow.models import JournalEntry, Posting
from refunds.holder_statement import holder_statement_lines, holder_statement_pdf
from refunds.services import refund_request
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s*\n\s*", "", "".join(page.extract_text() for page in reader.pages))


@pytest.fixture
def lived_card(settings, tmp_path, django_capture_on_commit_callbacks):
    """A 4-session pack: bought, one service confirmed, one rejected and upheld on dispute, then a
    voluntary refund with a 10% fee, paid out."""
    settings.MEDIA_ROOT = tmp_path
    merchant = builders.merchant(name="望京健身")
    pack = builders.session_pack(merchant, price=100_000, sessions=4, refund_fee_bps=1000)
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        card = builders.paid_card(pack)
    with time_machine.travel("2026-03-03 18:00 +0800", tick=False):
        use(card)
        rejected = redemption_request(merchant=merchant, card_id=card.pk)
        redemption_reject(consumer=card.consumer, redemption_id=rejected.pk)
        dispute = dispute_open(merchant=merchant, redemption_id=rejected.pk, reason="She trained.")
    with time_machine.travel("2026-03-05 09:00 +0800", tick=False):
        dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=UserFactory(role="regulator").pk)
    with time_machine.travel("2026-03-20 09:00 +0800", tick=False), django_capture_on_commit_callbacks(execute=True):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary")  # paid by the outbox
    return builders.fresh(card)


def test_the_statement_lists_every_entry_of_the_card_in_order_as_the_ledger_has_them(lived_card):
    lines = holder_statement_lines(card=lived_card)
    assert [(line.kind, line.amount, line.escrow_change, line.escrow_after) for line in lines] == [
        ("purchase", 100_000, 100_000, 100_000),
        ("service", 25_000, -25_000, 75_000),
        ("dispute", 25_000, -25_000, 50_000),
        ("fee", 5_000, -5_000, 45_000),
        ("refund", 45_000, -45_000, 0),
        ("refund_paid", 45_000, 0, 0),
    ]
    escrow_entries = set(
        Posting.objects.filter(account_id=lived_card.escrow_account_id).values_list("entry_id", flat=True)
    )
    assert {line.entry_id for line in lines if line.kind != "refund_paid"} == escrow_entries
    for line in lines:
        assert JournalEntry.objects.get(pk=line.entry_id).hash == line.entry_hash


def test_the_api_gives_the_holder_the_statement_with_hashes(lived_card):
    response = client_for(lived_card.consumer.user).get(f"/api/v1/cards/{lived_card.pk}/statement")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["price"], body["escrow_balance"], body["released_total"], body["refunded_total"]) == (
        100_000,
        0,
        55_000,
        45_000,
    )
    assert body["currency"] == "cny" and len(body["lines"]) == 6
    first = body["lines"][0]
    entry = JournalEntry.objects.get(pk=first["entry"])
    assert (first["kind"], first["hash"], first["label"]) == ("purchase", entry.hash, "购卡款存入托管账户")


def test_nobody_but_the_holder_reads_the_statement(lived_card):
    for path in (f"/api/v1/cards/{lived_card.pk}/statement", f"/api/v1/cards/{lived_card.pk}/statement.pdf"):
        assert client_for(builders.consumer().user).get(path).status_code == 404
        assert client_for(lived_card.merchant.user).get(path).status_code == 403
        assert client_for(UserFactory(role="regulator")).get(path).status_code == 403
    page = Client()
    page.force_login(builders.consumer().user)
    assert page.get(f"/c/cards/{lived_card.pk}/statement.pdf").status_code == 404


def test_the_card_page_shows_each_line_with_its_hash(lived_card):
    page = Client()
    page.force_login(lived_card.consumer.user)
    html = page.get(f"/c/cards/{lived_card.pk}/").content.decode()
    for line in holder_statement_lines(card=lived_card):
        assert line.entry_hash in html
    assert 'data-kind="dispute"' in html and "申诉成立" in html
    assert f"/c/cards/{lived_card.pk}/statement.pdf" in html


def test_the_pdf_states_every_line_in_chinese_with_its_hash(lived_card):
    response = Client()
    response.force_login(lived_card.consumer.user)
    pdf = response.get(f"/c/cards/{lived_card.pk}/statement.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert "预付卡持卡人对账单" in text and "望京健身" in text
    for words in ("购卡款存入托管账户", "服务确认", "申诉成立", "退款手续费", "退款已支付", "¥1,000.00", "-¥250.00"):
        assert words in text, words
    for line in holder_statement_lines(card=lived_card):
        assert line.entry_hash in text
    assert "2026年3月2日" in text  # Beijing dates


def test_an_unpaid_card_has_an_empty_statement():
    card = card_purchase(consumer=builders.consumer(), product_id=builders.session_pack(builders.merchant()).pk)
    assert holder_statement_lines(card=card) == []
    assert "本卡尚无资金往来" in pdf_text(holder_statement_pdf(card=builders.fresh(card)))


def test_the_statement_reads_the_ledger_in_a_fixed_number_of_queries_however_long_it_is(
    django_assert_max_num_queries,
):
    card = builders.paid_card(
        builders.stored_value(builders.merchant(), price=100_000, face_value=100_000, unit_price=100)
    )
    for _ in range(3):
        use(card, 100)
    with django_assert_max_num_queries(4) as short:
        assert len(holder_statement_lines(card=card)) == 4
    for _ in range(40):
        use(card, 100)
    with django_assert_max_num_queries(len(short.captured_queries)):
        assert len(holder_statement_lines(card=card)) == 44
