"""On a real PostgreSQL server: two merchants' payments, refunds and payouts never wait for each
other (issue 20, "no city-wide hot row"). One merchant's transaction is held open after its
posting; the other merchant's must then complete with ``lock_timeout`` set low. On the city-wide
accounts (a merchant from before per-merchant accounts) the same second payment times out: the
test tells the two apart."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

import pytest
import time_machine
from django.db import OperationalError, connection, connections, transaction

from consumers.models import Card
from consumers.services import _lock_payment, _payment_decide, card_purchase, payment_simulate
from core import outbox
from core.gateways import get_batch_gateway
from core.models import OutboxMessage
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Merchant
from merchants.services.settlement import PAYOUT_TOPIC, payouts_deliver_batch, settlement_run
from refunds.models import Refund
from refunds.services import refund_for_default, refund_mark_paid
from tests.cards import builders
from tests.cards.test_redemptions import use

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LOCK_TIMEOUT = "500ms"


@pytest.fixture(autouse=True)
def no_outbox_kicks(monkeypatch):
    """The broker is down: messages wait in the outbox (the sweep's job) for the test to deliver."""
    monkeypatch.setattr(outbox, "outbox_kick", lambda **kwargs: None)
    monkeypatch.setattr(outbox, "outbox_kick_many", lambda **kwargs: None)


@contextmanager
def held_open(work: Callable[[], object]) -> Iterator[None]:
    """Run ``work`` in a transaction on another connection and keep that transaction open (its row
    locks held) until the block ends; then it commits."""
    posted, release, errors = threading.Event(), threading.Event(), []

    def run() -> None:
        try:
            with transaction.atomic():
                work()
                posted.set()
                release.wait(timeout=60)
        except Exception as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            posted.set()
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert posted.wait(timeout=60)
        assert not errors, errors
        yield
    finally:
        release.set()
        thread.join(timeout=60)
    assert not errors, errors


@contextmanager
def lock_timeout() -> Iterator[None]:
    """This connection gives up on any lock it waits for longer than ``LOCK_TIMEOUT``."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")


def legacy(merchant: Merchant) -> Merchant:
    """The merchant as one signed up before merchants had custody accounts of their own."""
    Merchant.objects.filter(pk=merchant.pk).update(custody_account=None, refund_payable_account=None)
    merchant.refresh_from_db()
    return merchant


def pending_card(merchant: Merchant) -> Card:
    buyer = builders.consumer()
    return card_purchase(consumer=buyer, product_id=builders.session_pack(merchant).pk)


def pay_in_caller_transaction(card: Card) -> None:
    """What ``payment_settle`` does in its transaction: lock the payment and post the purchase."""
    payment, custody_id = _lock_payment(pk=card.payment.pk)
    _payment_decide(payment=payment, custody_id=custody_id, succeeded=True)


def chains_of(*cards: Card) -> set[int]:
    from django.conf import settings

    return {Card.objects.get(pk=card.pk).escrow_account_id % settings.LEDGER_CHAIN_STRIPES for card in cards}


def two_merchants(own_accounts: bool) -> tuple[Merchant, Merchant]:
    first, second = builders.merchant(), builders.merchant(name="second")
    return (first, second) if own_accounts else (legacy(first), legacy(second))


@contextmanager
def completes_or_times_out(own_accounts: bool) -> Iterator[None]:
    """On its own accounts the block completes; on the city-wide ones it waits for the held
    transaction until ``lock_timeout`` gives up."""
    if own_accounts:
        yield
        return
    with pytest.raises(OperationalError, match="lock timeout"):
        yield


OWN_OR_CITY_WIDE = pytest.mark.parametrize("own_accounts", [True, False], ids=["own accounts", "city-wide accounts"])


@OWN_OR_CITY_WIDE
def test_two_merchants_payments_do_not_wait_for_each_other(own_accounts):
    first, second = two_merchants(own_accounts)
    a, b = pending_card(first), pending_card(second)
    assert len(chains_of(a, b)) == 2  # not one hash chain: its head is locked per entry too

    with held_open(lambda: pay_in_caller_transaction(a)), lock_timeout(), completes_or_times_out(own_accounts):
        card = payment_simulate(consumer=b.consumer, payment_id=b.payment.pk, outcome="succeeded")
        assert card.state == Card.State.COOLING_OFF
    assert Card.objects.get(pk=a.pk).state == Card.State.COOLING_OFF
    assert ledger_ok(ledger_verify())


def cards_in_default(own_accounts: bool) -> tuple[Card, Card]:
    """A paid card at each of two merchants in default (flagged: its cards are refunded in full)."""
    first, second = two_merchants(own_accounts)
    a = builders.paid_card(builders.session_pack(first))
    b = builders.paid_card(builders.session_pack(second))
    Merchant.objects.filter(pk__in=[first.pk, second.pk]).update(flagged=True)
    return a, b


@OWN_OR_CITY_WIDE
def test_two_merchants_refunds_are_booked_without_waiting_for_each_other(own_accounts):
    a, b = cards_in_default(own_accounts)
    with (
        held_open(lambda: refund_for_default(card_id=a.pk, actor_id=None)),
        lock_timeout(),
        completes_or_times_out(own_accounts),
    ):
        _, booked = refund_for_default(card_id=b.pk, actor_id=None)
        assert booked
    assert Refund.objects.filter(state=Refund.State.PENDING).count() == (2 if own_accounts else 1)  # no kick
    assert ledger_ok(ledger_verify())


@OWN_OR_CITY_WIDE
def test_two_merchants_refunds_are_paid_without_waiting_for_each_other(own_accounts):
    a, b = cards_in_default(own_accounts)
    for card in (a, b):
        refund_for_default(card_id=card.pk, actor_id=None)  # booked; the outbox is not kicked: pending
    paid_a, paid_b = Refund.objects.get(card=a), Refund.objects.get(card=b)

    def pay_a() -> None:
        refund_mark_paid(refund=Refund.objects.select_for_update().get(pk=paid_a.pk), external_id="re_a")

    with held_open(pay_a), lock_timeout(), completes_or_times_out(own_accounts), transaction.atomic():
        refund_mark_paid(refund=Refund.objects.select_for_update().get(pk=paid_b.pk), external_id="re_b")
    expected = {Refund.State.PAID} if own_accounts else {Refund.State.PAID, Refund.State.PENDING}
    assert set(Refund.objects.values_list("state", flat=True)) == expected
    assert ledger_ok(ledger_verify())


@OWN_OR_CITY_WIDE
def test_two_merchants_payouts_do_not_wait_for_each_other(own_accounts):
    first, second = two_merchants(own_accounts)
    with time_machine.travel("2026-02-20 10:00 +0800", tick=False):
        cards = [builders.paid_card(builders.session_pack(shop)) for shop in (first, second)]
    with time_machine.travel("2026-03-02 11:00 +0800", tick=False):
        for card in cards:
            use(card)
    with time_machine.travel("2026-03-03 02:00 +0800", tick=False):
        settlement_run(day=date(2026, 3, 2), deliver=False)
    messages = {
        Merchant.objects.get(settlements__pk=message.payload["settlement_id"]).pk: message
        for message in OutboxMessage.objects.filter(topic=PAYOUT_TOPIC, state=OutboxMessage.State.PENDING)
    }
    assert set(messages) == {first.pk, second.pk}
    assert get_batch_gateway().name == "local"

    with (
        held_open(lambda: payouts_deliver_batch([messages[first.pk]])),
        lock_timeout(),
        completes_or_times_out(own_accounts),
        transaction.atomic(),
    ):
        payouts_deliver_batch([messages[second.pk]])
    states = [Merchant.objects.get(pk=shop.pk).settlements.get().payout_state for shop in (first, second)]
    assert states == (["paid", "paid"] if own_accounts else ["paid", "pending"])
    assert ledger_ok(ledger_verify())
