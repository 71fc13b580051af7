"""The four refund reasons: who may ask, when, and how much; every refund empties the card."""

import pytest
import time_machine

from consumers.models import Card
from core.errors import InvalidInput
from core.models import OutboxMessage
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from escrow.services import city_wide_account
from payments.models import BankTransaction
from refunds.errors import BalanceNotSmall, CardNotRefundable, CoolingOffExpired
from refunds.models import Refund
from refunds.services import refund_for_closure, refund_quote, refund_request
from tests.cards import builders
from tests.cards.test_redemptions import use

pytestmark = pytest.mark.django_db


def refund(card, reason, capture):
    with capture(execute=True):  # the outbox task runs after commit, as in production
        return refund_request(consumer=card.consumer, card_id=card.pk, reason=reason)


def test_cooling_off_refund_returns_all_money_paid_and_reaches_the_consumer_once(django_capture_on_commit_callbacks):
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000))
    made = refund(card, "cooling_off", django_capture_on_commit_callbacks)
    made.refresh_from_db()
    assert (made.amount, made.fee, made.state) == (100_000, 0, Refund.State.PAID)
    card = builders.fresh(card)
    assert card.state == Card.State.REFUNDED and card.escrow_account.balance == 0 and card.refunded_total == 100_000
    assert BankTransaction.objects.filter(kind="refund").count() == 1
    assert JournalEntry.objects.filter(code="refund_paid").count() == 1
    assert Account.objects.get(pk=card.merchant.refund_payable_account_id).balance == 0
    assert ledger_ok(ledger_verify())


def test_cooling_off_refund_after_first_service_is_refused():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    use(card)
    with pytest.raises(CoolingOffExpired):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")


def test_small_balance_refund_returns_escrow_left_without_fee(django_capture_on_commit_callbacks):
    product = builders.stored_value(
        builders.merchant(), price=90_000, face_value=100_000, unit_price=5_000, refund_fee_bps=1000
    )
    card = builders.paid_card(product)
    use(card, 96_000)  # balance 4,000 < unit price 5,000
    escrow = builders.fresh(card).escrow_account.balance
    made = refund(card, "small_balance", django_capture_on_commit_callbacks)
    assert (made.amount, made.fee) == (escrow, 0)
    assert builders.invariant_holds(card)


def test_small_balance_refund_with_enough_balance_is_balance_not_small():
    card = builders.paid_card(builders.stored_value(builders.merchant(), unit_price=5_000))
    use(card, 95_000)  # balance exactly 5,000: one more use fits
    with pytest.raises(BalanceNotSmall):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="small_balance")


def test_small_balance_refund_of_a_session_pack_is_balance_not_small():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    with pytest.raises(BalanceNotSmall):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="small_balance")


def test_voluntary_refund_keeps_the_contract_fee_for_the_merchant(django_capture_on_commit_callbacks):
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=3, refund_fee_bps=150))
    use(card)  # releases 33,333; 66,667 left
    made = refund(card, "voluntary", django_capture_on_commit_callbacks)
    assert made.fee == 66_667 * 150 // 10_000 == 1_000
    assert made.amount == 66_667 - 1_000
    card = builders.fresh(card)
    assert card.released_total == 33_333 + 1_000 and card.refunded_total == 65_667
    assert Account.objects.get(pk=card.merchant.settlement_account_id).balance == 34_333
    assert JournalEntry.objects.filter(code="fee").count() == 1
    assert builders.invariant_holds(card) and ledger_ok(ledger_verify())


def test_voluntary_refund_during_cooling_off_is_card_not_refundable():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    with pytest.raises(CardNotRefundable):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary")


def test_voluntary_refund_is_allowed_once_cooling_off_has_passed_by_the_clock():
    card = builders.paid_card(builders.session_pack(builders.merchant()), at="2026-03-02 10:00 +0800")
    with time_machine.travel("2026-03-10 00:00 +0800", tick=False):
        assert refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary").amount == card.price


def test_exhausted_card_is_not_refundable():
    card = builders.paid_card(builders.session_pack(builders.merchant(), sessions=1))
    use(card)
    with pytest.raises(CardNotRefundable):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="voluntary")


def test_a_consumer_cannot_ask_for_a_merchant_closure_refund():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    with pytest.raises(InvalidInput):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="merchant_closure")


def test_merchant_closure_refund_returns_all_escrow_left_without_fee(django_capture_on_commit_callbacks):
    card = builders.paid_card(
        builders.session_pack(builders.merchant(), price=100_000, sessions=4, refund_fee_bps=2000)
    )
    use(card)
    with django_capture_on_commit_callbacks(execute=True):
        made = refund_for_closure(card_id=card.pk, actor_label="system:closure")
    assert (made.amount, made.fee) == (75_000, 0)
    assert refund_for_closure(card_id=card.pk).pk == made.pk  # each card exactly once
    assert Refund.objects.filter(card=card).count() == 1


def test_asking_twice_for_the_same_refund_returns_it_and_pays_once(django_capture_on_commit_callbacks):
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    first = refund(card, "cooling_off", django_capture_on_commit_callbacks)
    second = refund(card, "cooling_off", django_capture_on_commit_callbacks)
    assert first.pk == second.pk
    assert BankTransaction.objects.filter(kind="refund").count() == 1
    assert OutboxMessage.objects.filter(topic="refund.send").count() == 1


def test_another_consumer_cannot_refund_the_card():
    from core.errors import NotFound

    card = builders.paid_card(builders.session_pack(builders.merchant()))
    with pytest.raises(NotFound):
        refund_request(consumer=builders.consumer(), card_id=card.pk, reason="cooling_off")


def test_refund_quote_names_the_amount_before_confirming():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=50_000))
    assert refund_quote(card=builders.fresh(card), reason="cooling_off") == (50_000, 0)


def test_booked_refund_waits_in_refunds_payable_until_the_gateway_pays():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=40_000))
    refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")  # no commit: outbox not run
    # Booked to the merchant's own refunds-payable account; the city-wide one is not touched.
    assert Account.objects.get(pk=card.merchant.refund_payable_account_id).balance == 40_000
    assert city_wide_account(Account.Kind.REFUND_PAYABLE).balance == 0
    assert OutboxMessage.objects.get().state == OutboxMessage.State.PENDING
    assert ledger_ok(ledger_verify())  # custody still holds it, owed to the consumer
