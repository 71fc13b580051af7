"""Transfers of a card to another consumer by phone number (issue 19, item 1): offer, accept,
decline, cancel, expiry; no money moves and no fee; each refusal with its reason; everyone told;
the new holder's contract reissued and the giver's kept."""

import io
from datetime import timedelta
from itertools import pairwise

import pytest
import time_machine
from pypdf import PdfReader

from consumers.disputes import dispute_decide, dispute_open
from consumers.errors import CardNotTransferable, TransferNotOpen
from consumers.models import CardTransfer, TopUp
from consumers.services import (
    card_purchase,
    consumer_register,
    payment_simulate,
    redemption_confirm,
    redemption_reject,
    redemption_request,
)
from consumers.services_top_ups import top_up_request
from consumers.services_transfers import (
    card_transfer_accept,
    card_transfer_cancel,
    card_transfer_decline,
    card_transfer_offer,
    card_transfers_expire_due,
)
from core.errors import InvalidInput, NotFound
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from notifications.models import Notification
from refunds.services import refund_request
from tests.cards import builders
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

BOUGHT = "2026-03-02 10:00 +0800"
NOW = "2026-03-20 10:00 +0800"  # the cards' cooling-off periods are over
GIVER_PHONE, TAKER_PHONE = "13800001111", "13900002222"


@pytest.fixture
def now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def active_card(giver=None, *, kind="session_pack"):
    """An active card of the giver's (bought at BOUGHT, served once: its cooling-off is over)."""
    giver = giver or builders.consumer(phone=GIVER_PHONE)
    merchant = builders.merchant(name="阳光健身")
    product = builders.session_pack(merchant) if kind == "session_pack" else builders.stored_value(merchant)
    card = builders.paid_card(product, giver, at=BOUGHT)
    with time_machine.travel("2026-03-03 10:00 +0800", tick=False):
        amount = 10_000 if kind == "stored_value" else None
        redemption = redemption_request(merchant=merchant, card_id=card.pk, amount=amount)
        redemption_confirm(consumer=giver, redemption_id=redemption.pk)
    return builders.fresh(card)


def taker():
    return builders.consumer(phone=TAKER_PHONE)


def notices(user, kind):
    return Notification.objects.filter(user=user, kind=kind)


def test_an_accepted_transfer_makes_the_card_theirs_and_moves_no_money(now):
    card, recipient = active_card(), taker()
    entries = JournalEntry.objects.count()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    assert transfer.state == CardTransfer.State.OFFERED
    assert transfer.expires_at - transfer.created_at == timedelta(hours=72)

    accepted = card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)

    assert accepted.state == CardTransfer.State.ACCEPTED and accepted.to_consumer == recipient
    after = builders.fresh(card)
    assert after.consumer_id == recipient.pk
    assert (after.price, after.escrow_account.balance, after.released_total, after.refunded_total) == (
        card.price,
        card.escrow_account.balance,
        card.released_total,
        card.refunded_total,
    )
    assert JournalEntry.objects.count() == entries  # no money moved, no fee
    assert ledger_ok(ledger_verify())
    # The new holder uses it; the giver no longer sees it.
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    assert redemption_confirm(consumer=recipient, redemption_id=redemption.pk).state == "confirmed"
    assert client_for(card.consumer.user).get(f"/api/v1/cards/{card.pk}").status_code == 404
    assert client_for(recipient.user).get(f"/api/v1/cards/{card.pk}").status_code == 200


def test_the_merchant_and_both_people_are_told(now):
    card, recipient = active_card(), taker()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    (offered,) = notices(recipient.user, "card_transfer_offered")
    assert card.consumer.display_name in offered.body and "阳光健身" in offered.body

    card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)

    (accepted,) = notices(card.consumer.user, "card_transfer_accepted")
    assert recipient.display_name in accepted.body
    (received,) = notices(recipient.user, "card_transfer_received")
    assert f"/c/cards/{card.pk}/" in received.body
    (merchant_told,) = notices(card.merchant.user, "card_transferred")
    assert card.counter_code_display in merchant_told.body and recipient.display_name in merchant_told.body
    assert str(card.pk) not in merchant_told.body


def test_a_declined_offer_leaves_the_card_with_its_holder(now):
    card, recipient = active_card(), taker()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    declined = card_transfer_decline(consumer=recipient, transfer_id=transfer.pk)
    assert declined.state == CardTransfer.State.DECLINED
    assert builders.fresh(card).consumer_id == card.consumer_id
    assert notices(card.consumer.user, "card_transfer_declined").count() == 1
    with pytest.raises(TransferNotOpen) as refused:
        card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)
    assert refused.value.reason == "declined"
    # Declined, the card may be offered again.
    assert card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE).state == "offered"


def test_the_holder_withdraws_an_offer_and_the_recipient_is_told(now):
    card, recipient = active_card(), taker()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    assert card_transfer_cancel(consumer=card.consumer, transfer_id=transfer.pk).state == "cancelled"
    assert card_transfer_cancel(consumer=card.consumer, transfer_id=transfer.pk).state == "cancelled"  # again
    assert notices(recipient.user, "card_transfer_cancelled").count() == 1
    with pytest.raises(TransferNotOpen):
        card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)
    assert builders.fresh(card).consumer_id == card.consumer_id


def test_an_unanswered_offer_expires_and_cannot_be_accepted_after(now):
    card, recipient = active_card(), taker()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    now.shift(timedelta(hours=72))
    with pytest.raises(TransferNotOpen) as refused:  # by the clock, before the job ran
        card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)
    assert refused.value.reason == "expired"
    assert card_transfers_expire_due() == 1
    assert card_transfers_expire_due() == 0
    transfer.refresh_from_db()
    assert transfer.state == CardTransfer.State.EXPIRED
    assert notices(card.consumer.user, "card_transfer_expired").count() == 1
    assert builders.fresh(card).consumer_id == card.consumer_id


def test_an_offer_to_a_number_without_an_account_waits_for_whoever_signs_up_with_it(now):
    card = active_card()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone="+86 139-0000-2222")
    assert transfer.to_phone == TAKER_PHONE
    newcomer = consumer_register(
        username="newcomer", password=builders.PASSWORD, display_name="新用户", phone="139 0000 2222"
    )
    card_transfer_accept(consumer=newcomer, transfer_id=transfer.pk)
    assert builders.fresh(card).consumer_id == newcomer.pk


def test_only_the_consumer_with_that_phone_answers_and_only_the_holder_withdraws(now):
    card, recipient = active_card(), taker()
    stranger = builders.consumer(phone="13700003333")
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    for answer in (card_transfer_accept, card_transfer_decline):
        for who in (stranger, card.consumer):
            with pytest.raises(NotFound):
                answer(consumer=who, transfer_id=transfer.pk)
    with pytest.raises(NotFound):
        card_transfer_cancel(consumer=recipient, transfer_id=transfer.pk)
    with pytest.raises(NotFound):
        card_transfer_offer(consumer=stranger, card_id=card.pk, to_phone=TAKER_PHONE)


def test_accepting_twice_returns_the_transfer_and_changes_nothing_more(now):
    card, recipient = active_card(), taker()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)
    again = card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)
    assert again.state == "accepted" and notices(recipient.user, "card_transfer_received").count() == 1
    with pytest.raises(TransferNotOpen):
        card_transfer_decline(consumer=recipient, transfer_id=transfer.pk)
    with pytest.raises(TransferNotOpen):
        card_transfer_cancel(consumer=card.consumer, transfer_id=transfer.pk)


def test_the_holders_own_number_is_refused(now):
    card = active_card()
    with pytest.raises(InvalidInput) as refused:
        card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone="+86 138 0000 1111")
    assert refused.value.errors is not None and "to_phone" in refused.value.errors
    with pytest.raises(InvalidInput):
        card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone="not a phone")


# --- the refusals: 409 card_not_transferable, with a reason ----------------------------------------


def refusal(consumer, card):
    with pytest.raises(CardNotTransferable) as refused:
        card_transfer_offer(consumer=consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    return refused.value.reason


def test_a_card_in_its_cooling_off_period_is_not_transferable(now):
    giver = builders.consumer(phone=GIVER_PHONE)
    card = builders.paid_card(builders.session_pack(builders.merchant()), giver)  # bought now
    assert refusal(giver, card) == "cooling_off"


def test_a_card_not_paid_or_finished_is_not_transferable(now):
    giver = builders.consumer(phone=GIVER_PHONE)
    product = builders.session_pack(builders.merchant())
    unpaid = card_purchase(consumer=giver, product_id=product.pk)
    assert refusal(giver, unpaid) == "not_paid"
    payment_simulate(consumer=giver, payment_id=unpaid.payment.pk, outcome="failed")
    assert refusal(giver, unpaid) == "finished"
    refunded = active_card(giver)
    refund_request(consumer=giver, card_id=refunded.pk, reason="voluntary")
    assert refusal(giver, refunded) == "finished"


def test_a_card_of_a_merchant_whose_releases_are_frozen_is_not_transferable(now):
    from regulator.services.actions import merchant_action_take
    from tests.factories import UserFactory

    card = active_card()
    merchant_action_take(
        merchant_id=card.merchant_id, actor_id=UserFactory(role="regulator").pk, action="freeze_releases", reason="x"
    )
    assert refusal(card.consumer, card) == "frozen"


def test_a_service_waiting_for_confirmation_blocks_the_offer_and_the_acceptance(now):
    card, recipient = active_card(), taker()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    redemption_request(merchant=card.merchant, card_id=card.pk)
    with pytest.raises(CardNotTransferable) as refused:
        card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)
    assert refused.value.reason == "awaiting_confirmation"
    transfer.refresh_from_db()
    assert transfer.state == "offered"  # still open: it may be accepted once the service is answered
    card_transfer_cancel(consumer=card.consumer, transfer_id=transfer.pk)
    assert refusal(card.consumer, card) == "awaiting_confirmation"
    now.shift(timedelta(minutes=16))  # the request expired unanswered: nothing waits any more
    assert card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE).state == "offered"


def test_a_top_up_waiting_for_payment_or_in_its_cooling_off_blocks_a_transfer(now):
    card = active_card(kind="stored_value")
    top_up = top_up_request(consumer=card.consumer, card_id=card.pk, amount=9_000)
    assert refusal(card.consumer, card) == "top_up_open"
    payment_simulate(consumer=card.consumer, payment_id=top_up.pk, outcome="succeeded")
    assert refusal(card.consumer, card) == "top_up_open"
    now.shift(timedelta(days=8))  # the top-up's own cooling-off is over
    assert card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE).state == "offered"
    top_up.refresh_from_db()
    assert top_up.state == TopUp.State.SETTLED


def test_a_dispute_the_merchant_opened_on_a_rejected_service_blocks_a_transfer_until_decided(now):
    card = active_card()
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    redemption_reject(consumer=card.consumer, redemption_id=redemption.pk)
    dispute = dispute_open(merchant=card.merchant, redemption_id=redemption.pk, reason="She took the class.")
    assert refusal(card.consumer, card) == "dispute_open"
    dispute_decide(dispute_id=dispute.pk, outcome="dismissed", note="no proof", actor_id=None)
    offer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    assert offer.state == CardTransfer.State.OFFERED


def test_a_second_open_offer_for_the_same_card_is_refused(now):
    card = active_card()
    card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    with pytest.raises(CardNotTransferable) as refused:
        card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone="13700003333")
    assert refused.value.reason == "offer_open"


def test_the_yearly_limit_keeps_a_card_from_being_resold_again_and_again(now):
    card = active_card()
    holders = [card.consumer, *(builders.consumer(phone=f"1370000{n:04d}") for n in range(3))]
    for giver, recipient in pairwise(holders[:3]):
        transfer = card_transfer_offer(consumer=giver, card_id=card.pk, to_phone=recipient.phone)
        card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)
    with pytest.raises(CardNotTransferable) as refused:
        card_transfer_offer(consumer=holders[2], card_id=card.pk, to_phone=holders[3].phone)
    assert refused.value.reason == "yearly_limit"
    assert refused.value.rule is not None and refused.value.rule.key == "transfers_per_card_per_year"
    assert refused.value.rule.value == 2 and "法释〔2025〕4号" in refused.value.rule.basis_zh
    now.shift(timedelta(days=366))  # a year after both: none in the window any more
    assert card_transfer_offer(consumer=holders[2], card_id=card.pk, to_phone=holders[3].phone).state == "offered"


# --- contracts -----------------------------------------------------------------------------------------


def pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_the_new_holder_gets_a_reissued_contract_and_the_givers_stays_theirs(now):
    card, recipient = active_card(), taker()
    transfer = card_transfer_offer(consumer=card.consumer, card_id=card.pk, to_phone=TAKER_PHONE)
    card_transfer_accept(consumer=recipient, transfer_id=transfer.pk)

    reissued = pdf_text(client_for(recipient.user).get(f"/api/v1/cards/{card.pk}/contract.pdf").content)
    assert "重新签发" in reissued and recipient.display_name in reissued and "2026年3月20日 10:00" in reissued
    assert "转让记录" in reissued and card.consumer.display_name in reissued

    giver = client_for(card.consumer.user)
    response = giver.get(f"/api/v1/card-transfers/{transfer.pk}/contract.pdf")
    assert response.status_code == 200
    kept = pdf_text(response.content)
    assert card.consumer.display_name in kept and f"转让给 {recipient.display_name}" in kept
    assert client_for(recipient.user).get(f"/api/v1/card-transfers/{transfer.pk}/contract.pdf").status_code == 404


# --- the API -------------------------------------------------------------------------------------------


def test_the_api_offers_and_the_recipient_finds_and_accepts(now):
    card, recipient = active_card(), taker()
    giver = client_for(card.consumer.user)
    created = giver.post(
        f"/api/v1/cards/{card.pk}/transfers", {"to_phone": TAKER_PHONE}, format="json", HTTP_IDEMPOTENCY_KEY="t-1"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["card"], body["state"], body["to_phone"]) == (str(card.pk), "offered", "139****2222")
    assert body["expires_at"]

    taker_api = client_for(recipient.user)
    listed = taker_api.get("/api/v1/card-transfers?state=offered").json()
    assert [item["id"] for item in listed["results"]] == [body["id"]]
    offered = listed["results"][0]["offered_card"]
    assert (offered["merchant_name"], offered["sessions_remaining"], offered["escrow_balance"]) == (
        "阳光健身",
        9,
        90_000,
    )
    accepted = taker_api.post(f"/api/v1/card-transfers/{body['id']}/accept", HTTP_IDEMPOTENCY_KEY="a-1")
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    assert taker_api.get(f"/api/v1/cards/{card.pk}").json()["consumer"] == str(recipient.pk)


def test_the_api_refusal_says_why_and_under_which_rule(now):
    giver = builders.consumer(phone=GIVER_PHONE)
    cooling = builders.paid_card(builders.session_pack(builders.merchant()), giver)
    response = client_for(giver.user).post(
        f"/api/v1/cards/{cooling.pk}/transfers", {"to_phone": TAKER_PHONE}, format="json"
    )
    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["reason"]) == ("card_not_transferable", "cooling_off") and body["detail"]
    assert "rule" not in body

    card = active_card(giver)
    holders = [giver, *(builders.consumer(phone=f"1370000{n:04d}") for n in range(3))]
    for one, other in pairwise(holders[:3]):
        transfer = card_transfer_offer(consumer=one, card_id=card.pk, to_phone=other.phone)
        card_transfer_accept(consumer=other, transfer_id=transfer.pk)
    response = client_for(holders[2].user).post(
        f"/api/v1/cards/{card.pk}/transfers",
        {"to_phone": holders[3].phone},
        format="json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    body = response.json()
    assert (response.status_code, body["code"], body["reason"]) == (409, "card_not_transferable", "yearly_limit")
    assert body["rule"] == "transfers_per_card_per_year" and body["basis"].startswith("Supreme People's Court")
    assert "2 times" in body["detail"]
