"""Disputes: a merchant contests a service its consumer rejected, within the rules profile's window;
both sides add evidence; the regulator's ``upheld`` releases that service's share exactly once (never
more than the escrow left), ``dismissed`` ends it; one not decided in time is dismissed by the clock.
While one is open, the card cannot be refunded (409 ``card_in_dispute``); a refund of every card of
the merchant (closing day, ``order_refunds``) dismisses it first and refunds the disputed share too."""

import hashlib
from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from consumers.disputes import (
    dispute_decide,
    dispute_evidence_add,
    dispute_open,
    disputes_expire_due,
)
from consumers.errors import (
    CardInDispute,
    DisputeExpired,
    DisputeNotOpen,
    DisputeWindowClosed,
    RedemptionNotDisputable,
)
from consumers.models import Card, Dispute, DisputeEvidence, Redemption
from consumers.selectors import card_has_open_dispute
from consumers.services import redemption_confirm, redemption_reject, redemption_request
from core import clock
from core.errors import InvalidInput, NotFound
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.errors import MerchantFrozen
from notifications.models import Notification
from notifications.texts import render
from refunds.models import MassRefund, Refund
from refunds.services import (
    mass_refund_start,
    mass_refund_step,
    refund_for_closure,
    refund_for_default,
    refund_request,
)
from regulator.models import AuditEvent
from regulator.services.actions import merchant_action_take
from regulator.services.disputes import regulator_dispute_decide
from tests.cards import builders
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

START = "2026-03-02 10:00 +0800"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def frozen_clock(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def regulator():
    return UserFactory(role="regulator")


def rejected(card: Card, amount: int | None = None) -> Redemption:
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=amount)
    return redemption_reject(consumer=card.consumer, redemption_id=redemption.pk)


def served(card: Card, amount: int | None = None) -> Redemption:
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=amount)
    return redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)


def pack_card(price: int = 100_000, sessions: int = 10) -> Card:
    return builders.paid_card(builders.session_pack(builders.merchant(), price=price, sessions=sessions))


def contested(card: Card, amount: int | None = None, **kwargs) -> Dispute:
    redemption = rejected(card, amount)
    return dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="She took the class.", **kwargs)


def pdf(name: str = "签到表.pdf", content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def releases() -> int:
    return JournalEntry.objects.filter(code=JournalEntry.Code.RELEASE).count()


# --- opening ------------------------------------------------------------------------------------


def test_the_merchant_contests_a_rejected_service_and_the_consumer_is_told_by_when_to_answer():
    card = pack_card()
    dispute = contested(card, files=[pdf()])
    assert dispute.state == Dispute.State.OPEN
    assert dispute.decide_by == clock.now() + timedelta(days=15)  # the profile's dispute_decision_days
    (evidence,) = DisputeEvidence.objects.filter(dispute=dispute)
    assert (evidence.party, evidence.name, evidence.content_type) == ("merchant", "签到表.pdf", "application/pdf")
    notice = Notification.objects.get(user=card.consumer.user, kind="dispute_opened")
    assert card.merchant.name in notice.title and "北京时间" in notice.body
    assert card_has_open_dispute(card)


def test_the_api_opens_a_dispute_as_api_md_says():
    card = pack_card()
    redemption = rejected(card)
    response = client_for(card.merchant.user).post(
        f"/api/v1/redemptions/{redemption.pk}/dispute", {"reason": "Signed in at 18:02."}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["redemption"], body["state"]) == (str(redemption.pk), "open")
    assert body["id"] == str(Dispute.objects.get().pk)


@pytest.mark.parametrize("answer", ["pending", "confirmed", "expired"])
def test_only_a_rejected_service_can_be_contested(answer, frozen_clock):
    card = pack_card()
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    if answer == "confirmed":
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    elif answer == "expired":
        frozen_clock.shift(timedelta(minutes=20))
    with pytest.raises(RedemptionNotDisputable):
        dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="x")
    assert not Dispute.objects.exists()


def test_a_pass_check_in_cannot_be_contested_it_releases_nothing():
    card = builders.paid_card(builders.period_pass(builders.merchant()))
    redemption = rejected(card)
    with pytest.raises(RedemptionNotDisputable):
        dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="x")


def test_another_merchant_cannot_contest_the_service_it_is_not_found():
    card = pack_card()
    redemption = rejected(card)
    with pytest.raises(NotFound):
        dispute_open(merchant=builders.merchant(), redemption_id=redemption.pk, reason="x")


def test_a_reason_is_required():
    card = pack_card()
    redemption = rejected(card)
    with pytest.raises(InvalidInput):
        dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="  ")


def test_contesting_within_the_window_is_allowed_up_to_its_last_moment(frozen_clock):
    card = pack_card()
    redemption = rejected(card)
    frozen_clock.shift(timedelta(days=7) - timedelta(seconds=1))
    assert dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="x").state == "open"


def test_contesting_after_the_window_is_refused_naming_the_rule_and_its_basis(frozen_clock):
    card = pack_card()
    redemption = rejected(card)
    frozen_clock.shift(timedelta(days=7))
    with pytest.raises(DisputeWindowClosed):
        dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="x")
    response = client_for(card.merchant.user).post(
        f"/api/v1/redemptions/{redemption.pk}/dispute", {"reason": "late"}, format="json"
    )
    body = response.json()
    assert response.status_code == 409 and body["code"] == "dispute_window_closed"
    assert body["rule"] == "dispute_window_days" and "7日" in body["basis"]


def test_contesting_twice_returns_the_first_dispute():
    card = pack_card()
    redemption = rejected(card)
    first = dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="one")
    again = dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="two")
    assert again.pk == first.pk and Dispute.objects.count() == 1


def test_a_card_refunded_before_the_merchant_contests_has_nothing_to_contest():
    card = pack_card()
    redemption = rejected(card)
    refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    with pytest.raises(RedemptionNotDisputable):
        dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="x")


# --- evidence -----------------------------------------------------------------------------------


def test_both_sides_add_text_and_files_and_each_file_keeps_its_type_and_hash():
    card = pack_card()
    dispute = contested(card)
    dispute_evidence_add(
        user=card.consumer.user,
        dispute_id=dispute.pk,
        text="I was not there that day.",
        files=[SimpleUploadedFile("ticket.png", PNG, content_type="application/pdf")],  # the claimed type is ignored
    )
    dispute_evidence_add(user=card.merchant.user, dispute_id=dispute.pk, files=[pdf("camera.pdf")])
    pieces = DisputeEvidence.objects.filter(dispute=dispute)
    assert {(p.party, p.text, p.content_type) for p in pieces} == {
        ("consumer", "", "image/png"),
        ("consumer", "I was not there that day.", ""),
        ("merchant", "", "application/pdf"),
    }
    png = pieces.get(content_type="image/png")
    assert png.sha256 == hashlib.sha256(PNG).hexdigest() and png.size == len(PNG)
    assert "ticket" not in png.file.name  # stored under a generated name


def test_a_file_that_is_not_a_pdf_jpeg_or_png_by_its_bytes_is_refused(settings):
    card = pack_card()
    dispute = contested(card)
    disguised = SimpleUploadedFile("evidence.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")
    with pytest.raises(InvalidInput) as refused:
        dispute_evidence_add(user=card.consumer.user, dispute_id=dispute.pk, files=[disguised])
    assert "evidence.pdf" in refused.value.errors["files"][0]
    settings.DISPUTE_EVIDENCE_MAX_BYTES = 20
    with pytest.raises(InvalidInput):
        dispute_evidence_add(user=card.consumer.user, dispute_id=dispute.pk, files=[pdf()])
    assert not DisputeEvidence.objects.filter(party="consumer").exists()


def test_nobody_but_the_two_sides_adds_evidence_and_none_after_the_decision(regulator):
    card = pack_card()
    dispute = contested(card)
    for outsider in (builders.consumer().user, builders.merchant().user, regulator):
        with pytest.raises(NotFound):
            dispute_evidence_add(user=outsider, dispute_id=dispute.pk, text="me too")
    dispute_decide(dispute_id=dispute.pk, outcome="dismissed", actor_id=regulator.pk)
    with pytest.raises(DisputeNotOpen):
        dispute_evidence_add(user=card.consumer.user, dispute_id=dispute.pk, text="late")


def test_evidence_files_download_as_attachments_to_the_two_sides_only(regulator):
    card = pack_card()
    dispute = contested(card, files=[pdf()])
    evidence = DisputeEvidence.objects.get(dispute=dispute)
    for user in (card.consumer.user, card.merchant.user):
        response = client_for(user).get(f"/api/v1/disputes/evidence/{evidence.pk}")
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment")
        assert response["Content-Type"] == "application/pdf" and b"".join(response.streaming_content) == PDF
    for outsider in (builders.consumer().user, builders.merchant().user, regulator):
        assert client_for(outsider).get(f"/api/v1/disputes/evidence/{evidence.pk}").status_code == 404
    response = client_for(regulator).get(f"/api/v1/regulator/disputes/evidence/{evidence.pk}")
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")


def test_evidence_is_added_over_the_api_as_multipart():
    card = pack_card()
    dispute = contested(card)
    response = client_for(card.consumer.user).post(
        f"/api/v1/disputes/{dispute.pk}/evidence",
        {"text": "Not me.", "files": [SimpleUploadedFile("a.png", PNG)]},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    evidence = response.json()["evidence"]
    assert {(e["party"], e["content_type"]) for e in evidence} == {("consumer", ""), ("consumer", "image/png")}
    assert all(e["url"] is None or e["url"].startswith("/api/v1/disputes/evidence/") for e in evidence)


# --- the decision -------------------------------------------------------------------------------


def test_upheld_releases_the_session_share_once_and_uses_the_session(regulator):
    card = pack_card(price=100_000, sessions=3)
    dispute = contested(card)
    before = releases()
    decided, now = dispute_decide(dispute_id=dispute.pk, outcome="upheld", note="CCTV shows her", actor_id=regulator.pk)
    assert now and (decided.state, decided.released) == ("upheld", 33_333)
    card = builders.fresh(card)
    assert (card.released_total, card.escrow_account.balance, card.sessions_remaining) == (33_333, 66_667, 2)
    assert card.state == Card.State.ACTIVE and card.first_service_at is not None  # the service was received
    assert releases() == before + 1
    entry = JournalEntry.objects.get(idempotency_key=f"dispute:{dispute.pk}")
    assert entry.code == "release" and entry.actor_id == regulator.pk
    again, now = dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    assert not now and again.released == 33_333 and releases() == before + 1
    assert builders.invariant_holds(card) and ledger_ok(ledger_verify())
    assert not card_has_open_dispute(card)
    assert set(Notification.objects.filter(kind="dispute_decided").values_list("user_id", flat=True)) == {
        card.consumer.user_id,
        card.merchant.user_id,
    }


def test_upheld_on_a_stored_value_card_releases_its_share_and_uses_its_face_value(regulator):
    card = builders.paid_card(
        builders.stored_value(builders.merchant(), price=90_000, face_value=100_000, unit_price=1_000)
    )
    dispute = contested(card, amount=30_000)
    decided, _ = dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    assert decided.released == 27_000  # floor(30000 * 90000 / 100000)
    card = builders.fresh(card)
    assert (card.balance, card.released_total, card.escrow_account.balance) == (70_000, 27_000, 63_000)


def test_upheld_last_session_releases_all_that_is_left_and_the_card_is_used_up(regulator):
    card = pack_card(price=100_000, sessions=3)
    served(card)
    served(card)
    dispute = contested(card)
    decided, _ = dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    card = builders.fresh(card)
    assert decided.released == 33_334 and card.escrow_account.balance == 0
    assert card.state == Card.State.EXHAUSTED and builders.invariant_holds(card)


def test_upheld_never_releases_more_than_the_escrow_left(regulator):
    card = builders.paid_card(
        builders.stored_value(builders.merchant(), price=90_000, face_value=100_000, unit_price=1_000)
    )
    dispute = contested(card, amount=50_000)
    served(card, amount=80_000)  # the card is used meanwhile: 20,000 of face value and 18,000 fen left
    decided, _ = dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    card = builders.fresh(card)
    assert decided.released == 18_000 and card.escrow_account.balance == 0 and card.balance == 0
    assert card.released_total == 90_000 and card.state == Card.State.EXHAUSTED


def test_upheld_on_a_card_used_up_since_releases_nothing(regulator):
    card = pack_card(price=100_000, sessions=2)
    dispute = contested(card)
    served(card)
    served(card)
    decided, _ = dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    assert decided.state == "upheld" and decided.released == 0
    assert not JournalEntry.objects.filter(idempotency_key=f"dispute:{dispute.pk}").exists()
    assert builders.invariant_holds(card) and ledger_ok(ledger_verify())


def test_dismissed_releases_nothing_and_frees_the_card(regulator):
    card = pack_card()
    dispute = contested(card)
    decided, _ = dispute_decide(dispute_id=dispute.pk, outcome="dismissed", note="no proof", actor_id=regulator.pk)
    assert (decided.state, decided.ended_by, decided.note, decided.released) == (
        "dismissed",
        "decision",
        "no proof",
        0,
    )
    card = builders.fresh(card)
    assert card.released_total == 0 and card.state == Card.State.COOLING_OFF
    assert refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off").amount == 100_000


def test_the_other_outcome_after_a_decision_is_refused(regulator):
    card = pack_card()
    dispute = contested(card)
    dispute_decide(dispute_id=dispute.pk, outcome="dismissed", actor_id=regulator.pk)
    with pytest.raises(DisputeNotOpen):
        dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    assert builders.fresh(card).released_total == 0


def test_upholding_while_the_merchants_releases_are_frozen_is_refused(regulator):
    card = pack_card()
    dispute = contested(card)
    merchant_action_take(merchant_id=card.merchant_id, actor_id=regulator.pk, action="freeze_releases", reason="t")
    with pytest.raises(MerchantFrozen):
        dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    assert Dispute.objects.get().state == "open" and builders.fresh(card).released_total == 0


def test_the_regulators_decision_over_the_api_is_audited_once(regulator):
    card = pack_card(price=100_000, sessions=4)
    dispute = contested(card)
    client = client_for(regulator)
    url = f"/api/v1/regulator/disputes/{dispute.pk}/decide"
    response = client.post(url, {"outcome": "upheld", "note": "signed register"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["state"], response.json()["released"]) == ("upheld", 25_000)
    assert client.post(url, {"outcome": "upheld"}, format="json").status_code == 200
    conflict = client.post(url, {"outcome": "dismissed"}, format="json")
    assert conflict.status_code == 409 and conflict.json()["code"] == "dispute_not_open"
    event = AuditEvent.objects.get(verb="dispute_decide")
    assert event.changes["state"] == ["open", "upheld"] and event.changes["amount"] == [None, 25_000]
    assert builders.fresh(card).released_total == 25_000


def test_the_regulator_lists_disputes_by_state(regulator):
    first, second = pack_card(), pack_card()
    open_one = contested(first)
    decided = contested(second)
    regulator_dispute_decide(regulator=regulator, dispute_id=decided.pk, outcome="dismissed")
    client = client_for(regulator)
    listed = client.get("/api/v1/regulator/disputes").json()
    assert listed["count"] == 2 and listed["results"][0]["id"] == str(open_one.pk)  # open first
    only_open = client.get("/api/v1/regulator/disputes?state=open").json()
    assert [row["id"] for row in only_open["results"]] == [str(open_one.pk)]
    assert client.get("/api/v1/regulator/disputes?state=nonsense").status_code == 400


# --- the clock ----------------------------------------------------------------------------------


def test_a_dispute_not_decided_in_time_is_dismissed_by_the_job_once(frozen_clock, regulator):
    card = pack_card()
    dispute = contested(card)
    frozen_clock.shift(timedelta(days=15) - timedelta(seconds=1))
    assert disputes_expire_due() == 0 and card_has_open_dispute(card)
    frozen_clock.shift(timedelta(seconds=1))
    assert not card_has_open_dispute(card)  # the clock decides, before the job runs
    with pytest.raises(DisputeExpired):
        dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    assert disputes_expire_due() == 1
    assert disputes_expire_due() == 0
    dispute.refresh_from_db()
    assert (dispute.state, dispute.ended_by, dispute.released) == ("dismissed", "timeout", 0)
    assert builders.fresh(card).released_total == 0
    merchant_notice = Notification.objects.get(user=card.merchant.user, kind="dispute_decided")
    assert "未在期限内" in merchant_notice.body or "in time" in merchant_notice.body


def test_the_job_dismisses_many_in_chunks(frozen_clock):
    cards = [pack_card() for _ in range(5)]
    for card in cards:
        contested(card)
    frozen_clock.shift(timedelta(days=16))
    assert disputes_expire_due(chunk_size=2) == 5
    assert set(Dispute.objects.values_list("state", flat=True)) == {"dismissed"}


# --- the card while a dispute is open -----------------------------------------------------------


def test_a_refund_is_refused_while_a_dispute_is_open_with_card_in_dispute():
    card = pack_card()
    contested(card)
    with pytest.raises(CardInDispute):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    response = client_for(card.consumer.user).post(
        f"/api/v1/cards/{card.pk}/refunds", {"reason": "cooling_off"}, format="json"
    )
    assert response.status_code == 409 and response.json()["code"] == "card_in_dispute"
    assert not Refund.objects.exists()


def test_a_refund_is_possible_again_once_the_dispute_times_out(frozen_clock):
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=10))
    served(card)
    contested(card)
    frozen_clock.shift(timedelta(days=15))
    refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary")
    assert refund.amount == 90_000


def test_the_regulators_refund_of_one_card_waits_for_the_dispute(regulator):
    card = pack_card()
    dispute = contested(card)
    merchant_action_take(merchant_id=card.merchant_id, actor_id=regulator.pk, action="flag", reason="t")
    with pytest.raises(CardInDispute):
        refund_for_default(card_id=card.pk, actor_id=regulator.pk)
    regulator_dispute_decide(regulator=regulator, dispute_id=dispute.pk, outcome="dismissed")
    refund, booked = refund_for_default(card_id=card.pk, actor_id=regulator.pk)
    assert booked and refund.amount == 100_000


def test_a_mass_refund_dismisses_the_open_dispute_and_refunds_the_disputed_share_too(regulator):
    card = pack_card(price=100_000, sessions=4)
    other = builders.paid_card(builders.session_pack(card.merchant, price=50_000, sessions=2))
    served(card)
    dispute = contested(card)
    job = mass_refund_start(merchant_id=card.merchant_id, reason=MassRefund.Reason.MERCHANT_CLOSURE)
    while mass_refund_step(job_id=job.pk):
        pass
    dispute.refresh_from_db()
    assert (dispute.state, dispute.ended_by) == ("dismissed", "refund")
    assert Refund.objects.get(card=card).amount == 75_000  # everything left, the disputed session too
    assert Refund.objects.get(card=other).amount == 50_000
    with pytest.raises(DisputeNotOpen):
        dispute_decide(dispute_id=dispute.pk, outcome="upheld", actor_id=regulator.pk)
    consumer_notice = Notification.objects.get(user=card.consumer.user, kind="dispute_decided")
    assert "退还" in consumer_notice.body
    assert builders.invariant_holds(card) and ledger_ok(ledger_verify())


def test_a_closing_merchants_refund_of_one_card_dismisses_its_open_dispute_first():
    card = pack_card(price=100_000, sessions=4)
    dispute = contested(card)
    refund = refund_for_closure(card_id=card.pk, actor_label="closure")
    dispute.refresh_from_db()
    assert refund.amount == 100_000 and (dispute.state, dispute.ended_by) == ("dismissed", "refund")
    assert builders.invariant_holds(card) and ledger_ok(ledger_verify())


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize(
    ("outcome", "ended_by"),
    [("upheld", "decision"), ("dismissed", "decision"), ("dismissed", "timeout"), ("dismissed", "refund")],
)
@pytest.mark.parametrize("party", ["consumer", "merchant"])
def test_every_dispute_notice_reads_in_both_languages_without_keys(language, outcome, ended_by, party):
    params = {"outcome": outcome, "ended_by": ended_by, "party": party, "merchant": "阳光健身", "amount_fen": 2500}
    title, body = render(kind="dispute_decided", params={**params, "url": "/c/disputes/x/"}, language=language)
    assert title and body and "_" not in title + body.replace("/c/disputes/x/", "")
    assert ("¥25.00" in body) == (outcome == "upheld")
    opened = render(
        kind="dispute_opened",
        params={"merchant": "阳光健身", "decide_by_at": "2026-03-17T02:00:00+00:00", "url": "/c/disputes/x/"},
        language=language,
    )
    assert "2026年3月17日" in opened[1] or "March 17, 2026" in opened[1]
