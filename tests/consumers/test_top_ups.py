"""Top-ups of stored-value cards (issue 19, item 4): a purchase of its own, with its own payment,
cooling-off period, escrow entry and annex, within the card cap and the education limit."""

from datetime import timedelta

import pytest
import time_machine
from pypdf import PdfReader

from consumers.errors import CardNotTopUpable, PaymentNotPending
from consumers.models import Card, TopUp
from consumers.services import payment_settle, payment_simulate, redemption_confirm, redemption_request
from consumers.services_top_ups import top_up_request, top_ups_settle_due
from core import clock
from core.outbox import outbox_deliver_many, outbox_due_ids
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.errors import CardLimitExceeded, MerchantSalesFrozen
from payments.models import BankTransaction
from refunds.errors import CardNotRefundable, CoolingOffExpired
from refunds.models import Refund
from refunds.services import refund_request, top_up_refund
from tests.cards import builders
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

BOUGHT = "2026-03-02 10:00 +0800"
LATER = "2026-03-20 10:00 +0800"  # the card's own cooling-off period is over


def stored_card(*, price=90_000, face_value=100_000, unit_price=5_000, category="fitness", at=BOUGHT):
    merchant = builders.merchant(category=category)
    product = builders.stored_value(merchant, price=price, face_value=face_value, unit_price=unit_price)
    return builders.paid_card(product, at=at)


def paid_top_up(card, amount, **kwargs):
    top_up = top_up_request(consumer=card.consumer, card_id=card.pk, amount=amount, **kwargs)
    payment_simulate(consumer=card.consumer, payment_id=top_up.pk, outcome="succeeded")
    top_up.refresh_from_db()
    return top_up


def invariant(card) -> bool:
    card = builders.fresh(card)
    return card.price == card.escrow_account.balance + card.released_total + card.refunded_total


@time_machine.travel(LATER, tick=False)
def test_a_paid_top_up_goes_into_the_card_escrow_and_counts_in_the_money_paid():
    card = stored_card()
    top_up = top_up_request(consumer=card.consumer, card_id=card.pk, amount=45_000)
    assert top_up.state == TopUp.State.PENDING_PAYMENT and top_up.face_value == 50_000  # the card's 90:100 rate
    assert builders.fresh(card).price == 90_000  # nothing counts before the money arrives

    payment_simulate(consumer=card.consumer, payment_id=top_up.pk, outcome="succeeded")

    top_up.refresh_from_db()
    card = builders.fresh(card)
    assert top_up.state == TopUp.State.COOLING_OFF
    assert (card.price, card.face_value, card.balance) == (135_000, 150_000, 150_000)
    assert card.escrow_account.balance == 135_000 and card.state == Card.State.ACTIVE
    assert invariant(card)
    entry = JournalEntry.objects.get(idempotency_key=f"top-up:{top_up.pk}")
    assert entry.code == JournalEntry.Code.PURCHASE
    assert BankTransaction.objects.filter(reference=f"charge:{top_up.external_id}", amount=45_000).exists()
    assert ledger_ok(ledger_verify())


@time_machine.travel(LATER, tick=False)
def test_a_top_up_has_its_own_cooling_off_period_counted_from_its_payment():
    card = stored_card()
    top_up = paid_top_up(card, 9_000)
    # Paid 2026-03-20 10:00 Beijing: the day not counted, 7 days, ends at 00:00 of the 28th.
    assert top_up.paid_at is not None and top_up.cooling_off_ends_at is not None
    assert top_up.cooling_off_ends_at.isoformat() == "2026-03-27T16:00:00+00:00"


@time_machine.travel(LATER, tick=False)
def test_a_top_up_returned_in_its_cooling_off_returns_only_its_money_and_the_card_stays_in_use():
    card = stored_card()
    top_up = paid_top_up(card, 45_000)

    refund = top_up_refund(consumer=card.consumer, top_up_id=top_up.pk)

    card = builders.fresh(card)
    top_up.refresh_from_db()
    assert (refund.amount, refund.fee, refund.reason, refund.top_up_id) == (45_000, 0, "cooling_off", top_up.pk)
    assert top_up.state == TopUp.State.REFUNDED
    assert card.state == Card.State.ACTIVE and card.balance == 100_000 and card.escrow_account.balance == 90_000
    assert (card.price, card.refunded_total) == (135_000, 45_000)
    assert invariant(card)
    # Asking again returns the refund; the card's own refund is still open to the holder.
    assert top_up_refund(consumer=card.consumer, top_up_id=top_up.pk).pk == refund.pk
    voluntary = refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary")
    assert voluntary.amount == 90_000 and builders.fresh(card).state == Card.State.REFUNDED
    assert invariant(card) and ledger_ok(ledger_verify())


@time_machine.travel(LATER, tick=False)
def test_a_top_up_refund_is_paid_back_through_the_top_ups_own_payment():
    card = stored_card()
    top_up = paid_top_up(card, 20_000)
    refund = top_up_refund(consumer=card.consumer, top_up_id=top_up.pk)

    outbox_deliver_many(message_ids=outbox_due_ids())

    refund.refresh_from_db()
    assert refund.state == Refund.State.PAID
    paid = BankTransaction.objects.get(kind=BankTransaction.Kind.REFUND)
    assert paid.amount == -20_000
    assert ledger_ok(ledger_verify())


def test_a_service_received_after_the_top_up_ends_its_cooling_off():
    card = stored_card()
    with time_machine.travel(LATER, tick=False):
        top_up = paid_top_up(card, 9_000)
    with time_machine.travel("2026-03-21 10:00 +0800", tick=False):
        redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=5_000)
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
        with pytest.raises(CoolingOffExpired) as refused:
            top_up_refund(consumer=card.consumer, top_up_id=top_up.pk)
        assert refused.value.rule is not None and refused.value.rule.key == "cooling_off_days"
        assert top_ups_settle_due() == 1
    top_up.refresh_from_db()
    assert top_up.state == TopUp.State.SETTLED


def test_a_service_before_the_top_up_leaves_its_cooling_off_open():
    card = stored_card()
    with time_machine.travel(LATER, tick=False):
        redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=5_000)
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    with time_machine.travel("2026-03-21 10:00 +0800", tick=False):
        top_up = paid_top_up(card, 9_000)
        assert top_ups_settle_due() == 0
        assert top_up_refund(consumer=card.consumer, top_up_id=top_up.pk).amount == 9_000
    assert invariant(card)


def test_a_top_up_past_its_cooling_off_is_settled_by_the_clock_and_not_returned():
    card = stored_card()
    with time_machine.travel(LATER, tick=False):
        top_up = paid_top_up(card, 9_000)
    with time_machine.travel("2026-03-28 00:00 +0800", tick=False):
        with pytest.raises(CoolingOffExpired):
            top_up_refund(consumer=card.consumer, top_up_id=top_up.pk)
        assert top_ups_settle_due() == 1
        assert top_ups_settle_due() == 0
    top_up.refresh_from_db()
    assert top_up.state == TopUp.State.SETTLED


@time_machine.travel(LATER, tick=False)
def test_only_a_stored_value_card_in_use_is_topped_up():
    merchant = builders.merchant()
    pack = builders.paid_card(builders.session_pack(merchant), at=BOUGHT)
    with pytest.raises(CardNotTopUpable) as refused:
        top_up_request(consumer=pack.consumer, card_id=pack.pk, amount=1_000)
    assert refused.value.reason == "not_stored_value"

    card = stored_card()
    refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary")
    with pytest.raises(CardNotTopUpable) as refused:
        top_up_request(consumer=card.consumer, card_id=card.pk, amount=1_000)
    assert refused.value.reason == "not_in_use"


@time_machine.travel(LATER, tick=False)
def test_a_merchant_whose_sales_are_frozen_takes_no_top_up():
    card = stored_card()
    card.merchant.sales_frozen = True
    card.merchant.save(update_fields=["sales_frozen"])
    with pytest.raises(MerchantSalesFrozen):
        top_up_request(consumer=card.consumer, card_id=card.pk, amount=1_000)


@time_machine.travel(LATER, tick=False)
def test_the_card_cap_counts_everything_paid_in_and_not_yet_used():
    card = stored_card(price=300_000, face_value=300_000, unit_price=1_000)
    # 300,000 held + 200,000 waiting for its payment = the ¥5,000 cap: one fen more is refused.
    waiting = top_up_request(consumer=card.consumer, card_id=card.pk, amount=200_000)
    with pytest.raises(CardLimitExceeded) as refused:
        top_up_request(consumer=card.consumer, card_id=card.pk, amount=1)
    assert refused.value.rule is not None and refused.value.rule.key == "max_price"
    assert "¥0.00" in str(refused.value.detail)
    # A failed payment frees its room; a service uses money up, which frees room too.
    payment_simulate(consumer=card.consumer, payment_id=waiting.pk, outcome="failed")
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=100_000)
    redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
    assert paid_top_up(card, 300_000).state == TopUp.State.COOLING_OFF
    assert builders.fresh(card).escrow_account.balance == 500_000 and invariant(card)


@time_machine.travel(LATER, tick=False)
def test_a_top_up_at_an_education_merchant_keeps_within_its_class_hours():
    # ¥10 a lesson; 40 lessons bought, 10 more waiting for their payment: 50 of the 60 allowed.
    card = stored_card(price=40_000, face_value=40_000, unit_price=1_000, category="education")
    top_up_request(consumer=card.consumer, card_id=card.pk, amount=10_000)
    with pytest.raises(CardLimitExceeded) as refused:
        top_up_request(consumer=card.consumer, card_id=card.pk, amount=11_000)  # 11 more: 61
    assert refused.value.rule is not None and refused.value.rule.key == "education_max_sessions"
    assert refused.value.errors is not None and "amount" in refused.value.errors
    assert top_up_request(consumer=card.consumer, card_id=card.pk, amount=10_999).face_value == 10_999  # 10: 60


@time_machine.travel(LATER, tick=False)
def test_a_failed_payment_cancels_the_top_up_and_changes_nothing():
    card = stored_card()
    top_up = top_up_request(consumer=card.consumer, card_id=card.pk, amount=9_000)
    payment_simulate(consumer=card.consumer, payment_id=top_up.pk, outcome="failed")
    top_up.refresh_from_db()
    assert top_up.state == TopUp.State.CANCELLED and top_up.payment_status == "failed"
    assert builders.fresh(card).price == 90_000
    assert not BankTransaction.objects.filter(reference=f"charge:{top_up.external_id}").exists()
    with pytest.raises(PaymentNotPending):
        payment_simulate(consumer=card.consumer, payment_id=top_up.pk, outcome="succeeded")


@time_machine.travel(LATER, tick=False)
def test_money_for_a_card_refunded_meanwhile_is_not_taken():
    card = stored_card()
    top_up = top_up_request(consumer=card.consumer, card_id=card.pk, amount=9_000)
    refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary")

    answered = payment_simulate(consumer=card.consumer, payment_id=top_up.pk, outcome="succeeded")

    top_up.refresh_from_db()
    assert answered.state == Card.State.REFUNDED and top_up.state == TopUp.State.CANCELLED
    assert not BankTransaction.objects.filter(reference=f"charge:{top_up.external_id}").exists()
    assert invariant(card) and ledger_ok(ledger_verify())


@time_machine.travel(LATER, tick=False)
def test_the_gateways_verdict_by_external_id_settles_a_top_up_once():
    card = stored_card()
    top_up = top_up_request(consumer=card.consumer, card_id=card.pk, amount=9_000)
    payment_settle(payment_external_id=top_up.external_id, succeeded=True)
    payment_settle(payment_external_id=top_up.external_id, succeeded=True)  # told twice
    assert builders.fresh(card).price == 99_000
    assert JournalEntry.objects.filter(idempotency_key=f"top-up:{top_up.pk}").count() == 1


@time_machine.travel(LATER, tick=False)
def test_someone_elses_top_up_is_not_found():
    card = stored_card()
    top_up = paid_top_up(card, 9_000)
    stranger = builders.consumer(phone="13900009999")
    from core.errors import NotFound

    with pytest.raises(NotFound):
        top_up_request(consumer=stranger, card_id=card.pk, amount=1_000)
    with pytest.raises(NotFound):
        top_up_refund(consumer=stranger, top_up_id=top_up.pk)


@time_machine.travel(LATER, tick=False)
def test_a_top_up_refund_is_refused_once_the_card_no_longer_holds_it():
    card = stored_card(price=10_000, face_value=10_000, unit_price=1_000)
    top_up = paid_top_up(card, 10_000)
    refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary")  # everything back
    with pytest.raises(CardNotRefundable):
        top_up_refund(consumer=card.consumer, top_up_id=top_up.pk)


@time_machine.travel(LATER, tick=False)
def test_using_a_topped_up_card_to_the_last_fen_releases_everything_and_exhausts_it():
    card = stored_card(price=88_888, face_value=100_000, unit_price=3_000)
    paid_top_up(card, 33_333)
    card = builders.fresh(card)
    while card.balance:
        amount = min(card.balance, 37_000)
        redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=amount)
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
        card = builders.fresh(card)
    assert card.state == Card.State.EXHAUSTED and card.escrow_account.balance == 0
    assert card.released_total == card.price == 88_888 + 33_333


# --- the API, the annex ---------------------------------------------------------------------------


@time_machine.travel(LATER, tick=False)
def test_the_api_tops_up_pays_and_returns_a_top_up():
    card = stored_card()
    api = client_for(card.consumer.user)
    created = api.post(
        f"/api/v1/cards/{card.pk}/top-ups", {"amount": 9_000}, format="json", HTTP_IDEMPOTENCY_KEY="top-up-1"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["state"], body["amount"], body["face_value"], body["currency"]) == (
        "pending_payment",
        9_000,
        10_000,
        "cny",
    )
    assert body["payment"]["id"] == body["id"] and body["payment"]["status"] == "pending"
    again = api.post(
        f"/api/v1/cards/{card.pk}/top-ups", {"amount": 9_000}, format="json", HTTP_IDEMPOTENCY_KEY="top-up-1"
    )
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    reused = api.post(
        f"/api/v1/cards/{card.pk}/top-ups", {"amount": 8_000}, format="json", HTTP_IDEMPOTENCY_KEY="top-up-1"
    )
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_key_reused"

    paid = api.post(f"/api/v1/payments/{body['id']}/simulate", {"outcome": "succeeded"}, format="json")
    assert paid.status_code == 200 and paid.json()["price"] == 99_000
    got = api.get(f"/api/v1/card-top-ups/{body['id']}").json()
    assert got["state"] == "cooling_off" and got["payment"]["status"] == "succeeded"
    assert api.get(f"/api/v1/cards/{card.pk}/top-ups").json()["count"] == 1

    refund = api.post(f"/api/v1/card-top-ups/{body['id']}/refund", format="json")
    assert refund.status_code == 201 and refund.json()["top_up"] == body["id"] and refund.json()["amount"] == 9_000


@time_machine.travel(LATER, tick=False)
def test_the_api_refusals_name_their_reason_and_rule():
    card = stored_card(price=500_000, face_value=500_000, unit_price=1_000)
    api = client_for(card.consumer.user)
    over = api.post(f"/api/v1/cards/{card.pk}/top-ups", {"amount": 1}, format="json")
    assert over.status_code == 400 and over.json()["code"] == "card_limit_exceeded"
    assert over.json()["rule"] == "max_price" and over.json()["basis"]
    pack = builders.paid_card(builders.session_pack(card.merchant), card.consumer, at=BOUGHT)
    refused = api.post(f"/api/v1/cards/{pack.pk}/top-ups", {"amount": 1_000}, format="json")
    assert refused.status_code == 409
    assert (refused.json()["code"], refused.json()["reason"]) == ("card_not_top_upable", "not_stored_value")
    fraction = api.post(f"/api/v1/cards/{card.pk}/top-ups", {"amount": 10.5}, format="json")
    assert fraction.status_code == 400 and "amount" in fraction.json()["errors"]


@time_machine.travel(LATER, tick=False)
def test_the_annex_states_the_top_up_and_its_cooling_off():
    card = stored_card()
    top_up = paid_top_up(card, 45_000)
    response = client_for(card.consumer.user).get(f"/api/v1/card-top-ups/{top_up.pk}/annex.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    import io

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "预付卡充值补充协议及收据" in text and "¥450.00" in text and "¥500.00" in text
    assert "2026年3月28日 00:00" in text
    contract = client_for(card.consumer.user).get(f"/api/v1/cards/{card.pk}/contract.pdf")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(contract.content)).pages)
    assert "充值记录" in text and "¥900.00" in text and "¥1,350.00" in text


@time_machine.travel(LATER, tick=False)
def test_a_returned_top_up_is_not_a_card_returned_in_the_merchants_refund_rate():
    from regulator.models import RiskAssessment
    from regulator.services.risk import compute_risk

    card = stored_card()
    top_up_refund(consumer=card.consumer, top_up_id=paid_top_up(card, 9_000).pk)
    other = builders.paid_card(card.product)
    refund_request(consumer=other.consumer, card_id=other.pk, reason="cooling_off")
    compute_risk(at=clock.now() + timedelta(minutes=1), merchant_ids=[card.merchant_id])
    signals = {s["name"]: s for s in RiskAssessment.objects.get(merchant=card.merchant).signals}
    assert signals["refund_rate"]["value"] == 0.5  # one card of the two returned; the top-up is no card
