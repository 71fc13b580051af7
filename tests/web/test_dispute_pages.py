"""The dispute pages: the merchant contests a rejected service from its list with files, the
consumer adds their side from the card page, the regulator decides; each sees what is theirs only."""

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from consumers.models import Dispute, DisputeEvidence
from consumers.services import redemption_reject, redemption_request
from tests.cards import builders
from tests.factories import UserFactory, sign_in

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def rejected(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=4))
        redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
        redemption_reject(consumer=card.consumer, redemption_id=redemption.pk)
        yield card, redemption


def browser(user) -> Client:
    return sign_in(Client(), user)


def test_the_merchant_sees_the_rejected_service_and_contests_it_with_a_file(rejected):
    card, redemption = rejected
    merchant = browser(card.merchant.user)
    listing = merchant.get("/m/disputes/").content.decode()
    assert f'data-redemption-id="{redemption.pk}"' in listing and "申诉" in listing
    live = merchant.get("/m/redemptions/live/").content.decode()
    assert 'data-testid="redemption-contest-link"' in live
    form = merchant.get(f"/m/redemptions/{redemption.pk}/dispute/")
    assert form.status_code == 200 and b'data-testid="dispute-open-form"' in form.content
    sent = merchant.post(
        f"/m/redemptions/{redemption.pk}/dispute/",
        {"reason": "会员当天已签到上课。", "files": [SimpleUploadedFile("签到表.pdf", PDF)]},
    )
    dispute = Dispute.objects.get()
    assert sent.status_code == 302 and sent["Location"] == f"/m/disputes/{dispute.pk}/"
    assert dispute.evidence.get().name == "签到表.pdf"
    assert 'data-testid="redemption-dispute-link"' in merchant.get("/m/redemptions/live/").content.decode()


def test_a_file_that_is_not_a_pdf_jpeg_or_png_is_refused_on_the_page(rejected):
    card, redemption = rejected
    sent = browser(card.merchant.user).post(
        f"/m/redemptions/{redemption.pk}/dispute/",
        {"reason": "已上课。", "files": [SimpleUploadedFile("签到表.pdf", b"<html>not a pdf</html>")]},
    )
    assert sent.status_code == 400 and "只接受 PDF、JPEG 或 PNG" in sent.content.decode()
    assert not Dispute.objects.exists()


def test_the_consumer_adds_their_side_from_the_card_page_and_refunds_wait(rejected):
    card, redemption = rejected
    browser(card.merchant.user).post(f"/m/redemptions/{redemption.pk}/dispute/", {"reason": "已上课。"})
    dispute = Dispute.objects.get()
    consumer = browser(card.consumer.user)
    page = consumer.get(f"/c/cards/{card.pk}/").content.decode()
    assert f"/c/disputes/{dispute.pk}/" in page and 'data-testid="refund-in-dispute"' in page
    assert 'data-testid="refund-form"' not in page
    sent = consumer.post(
        f"/c/disputes/{dispute.pk}/", {"text": "那天我在外地出差。", "files": [SimpleUploadedFile("车票.png", PNG)]}
    )
    assert sent.status_code == 302
    assert set(DisputeEvidence.objects.filter(party="consumer").values_list("content_type", flat=True)) == {
        "",
        "image/png",
    }
    shown = consumer.get(f"/c/disputes/{dispute.pk}/").content.decode()
    assert "那天我在外地出差" in shown and "车票.png" in shown
    assert browser(builders.consumer().user).get(f"/c/disputes/{dispute.pk}/").status_code == 404
    assert browser(builders.merchant().user).get(f"/m/disputes/{dispute.pk}/").status_code == 404


def test_the_regulator_upholds_on_the_page_and_the_card_shows_the_release(rejected):
    card, redemption = rejected
    browser(card.merchant.user).post(f"/m/redemptions/{redemption.pk}/dispute/", {"reason": "已上课。"})
    dispute = Dispute.objects.get()
    regulator = browser(UserFactory(role="regulator"))
    assert f'data-dispute-id="{dispute.pk}"' in regulator.get("/r/disputes/?state=open").content.decode()
    decided = regulator.post(f"/r/disputes/{dispute.pk}/decide/", {"outcome": "upheld", "note": "签到表属实"})
    assert decided.status_code == 302
    detail = regulator.get(f"/r/disputes/{dispute.pk}/").content.decode()
    assert "¥250.00" in detail and 'data-testid="dispute-closed"' in detail
    page = browser(card.consumer.user).get(f"/c/cards/{card.pk}/").content.decode()
    assert 'data-testid="card-dispute-released"' in page and 'data-kind="dispute"' in page
    again = regulator.post(f"/r/disputes/{dispute.pk}/decide/", {"outcome": "dismissed"})
    assert again.status_code == 409 and "已有裁决" in again.content.decode()
