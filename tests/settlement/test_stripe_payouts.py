"""Payouts under PAYMENT_GATEWAY=stripe: a settlement is paid as one Stripe Transfer to the
merchant's connected account, through the real services, outbox and ``stripe`` library, against the
fake Stripe of ``tests.stripe_fake``.

The cards are bought and paid the Stripe way (a purchase makes a PaymentIntent, the fake charges
it, a signed ``payment_intent.succeeded`` webhook puts the price in escrow), so the fake's statement
holds the charges that the payouts are paid from. As in ``tests.payments.test_stripe`` the tests run
with ``transaction=True``: the services commit for real and each settlement chunk's payouts are
delivered at its commit (``on_commit`` → the eager Celery task).
"""

from datetime import date, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.db.models import Sum
from rest_framework.test import APIClient

from consumers.models import Card
from consumers.services import redemption_confirm, redemption_request
from core.gateways import get_gateway
from core.models import OutboxMessage
from core.outbox import outbox_deliver
from core.tasks import outbox_sweep_task
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_verify
from merchants.models import Merchant, Settlement
from merchants.services.settlement import payouts_deliver, settlement_payout_retry, settlement_run
from payments.gateways import stripe as stripe_gateway
from payments.gateways.stripe import StripeGateway
from payments.models import BankTransaction
from refunds.services import refund_request
from tests import stripe_fake as fake_stripe
from tests.cards import builders
from tests.conftest import client_for
from tests.stripe_fake import event_payload, sign_payload

stripe_fake = fake_stripe.stripe_fake  # the fixture, for pytest to find under its name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.payments.urls")]

PRICE = 100_000  # fen: ¥1,000.00 for 10 sessions, so one session releases 10,000
WEBHOOK = "/api/v1/webhooks/stripe"
CONNECTED = "acct_1GymChaoyang0001"
BOUGHT = "2026-02-20 10:00 +0800"
BUSINESS_DAY = date(2026, 3, 2)
DURING_THE_DAY = "2026-03-02 11:00 +0800"
SETTLING_TIME = "2026-03-03 02:00 +0800"


def at(moment):
    return time_machine.travel(moment, tick=False)


def stripe_paid_card(product, fake) -> Card:
    """A card bought through the API and paid at Stripe, which told us by a signed webhook."""
    buyer = builders.consumer()
    response = client_for(buyer.user).post("/api/v1/cards", {"product": str(product.pk)}, format="json")
    assert response.status_code == 201, response.content
    card_id = response.json()["id"]
    (intent,) = [pi for pi in fake.payment_intents.values() if pi["metadata"].get("card_id") == card_id]
    payload = event_payload("payment_intent.succeeded", fake.payment_succeed(intent["id"]))
    delivered = APIClient().post(
        WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign_payload(payload)
    )
    assert delivered.json() == {"received": True, "result": "handled"}, delivered.content
    return Card.objects.select_related("merchant", "consumer").get(pk=card_id)


def use(card: Card) -> None:
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=None)
    redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)


def gym_with_cards(fake, *, stripe_account_id: str, cards: int = 3):
    gym = builders.merchant()
    Merchant.objects.filter(pk=gym.pk).update(stripe_account_id=stripe_account_id)
    pack = builders.session_pack(gym, price=PRICE, sessions=10, refund_fee_bps=1000)
    with at(BOUGHT):
        bought = [stripe_paid_card(pack, fake) for _ in range(cards)]
    return SimpleNamespace(merchant=Merchant.objects.get(pk=gym.pk), cards=bought)


@pytest.fixture
def day_of_business(stripe_fake):
    """On 2026-03-02 a gym with a connected account sees 3 sessions used (3 x 10,000 released) and
    one voluntary refund with a 10% fee (9,000 to the gym, 81,000 back to the consumer)."""
    gym = gym_with_cards(stripe_fake, stripe_account_id=CONNECTED)
    with at(DURING_THE_DAY):
        for card in gym.cards:
            use(card)
        refund_request(consumer=gym.cards[0].consumer, card_id=gym.cards[0].pk, reason="voluntary")
    (stripe_refund,) = stripe_fake.refunds.values()
    assert stripe_refund["amount"] == 81_000
    return gym


def settle(day: date = BUSINESS_DAY, when: str = SETTLING_TIME):
    with at(when):
        return settlement_run(day=day)


def settlement_of(merchant) -> Settlement:
    return Settlement.objects.get(merchant=merchant)


def payout_message(settlement: Settlement) -> OutboxMessage:
    return OutboxMessage.objects.get(idempotency_key=f"payout:{settlement.pk}")


def after_backoff(message: OutboxMessage):
    return time_machine.travel(message.next_attempt_at + timedelta(seconds=1), tick=False)


def assert_paid_by_one_transfer(settlement: Settlement, fake) -> None:
    """Stripe made one transfer, the settlement is paid with its id, the payout booked once."""
    (transfer,) = fake.transfers_made()
    settlement.refresh_from_db()
    assert (settlement.payout_state, settlement.payout_reference) == ("paid", transfer["id"])
    assert JournalEntry.objects.filter(code="payout").count() == 1
    assert_ledger_verifies()


def settlement_balance(merchant) -> int:
    return Account.objects.get(pk=merchant.settlement_account_id).balance


def custody() -> int:
    """Every custody account together: the city-wide one and each merchant's."""
    return Account.objects.filter(kind=Account.Kind.CUSTODY).aggregate(total=Sum("balance"))["total"] or 0


def assert_ledger_verifies() -> None:
    report = ledger_verify()
    assert report["problems"] == []
    assert report["balanced"] and report["chain_ok"] and report["custody_matches"] and report["accounts_match"]


# --- payouts -------------------------------------------------------------------------------------


def test_a_days_payout_is_one_transfer_to_the_merchants_connected_account(day_of_business, stripe_fake):
    gym = day_of_business

    settle()

    settlement = settlement_of(gym.merchant)
    assert (settlement.released, settlement.fees, settlement.payout_amount) == (30_000, 9_000, 39_000)
    (call,) = stripe_fake.requests_to("POST", "/v1/transfers")
    assert call.idempotency_key == f"payout:{settlement.pk}"
    assert call.status == 200
    (transfer,) = stripe_fake.transfers_made()
    assert transfer["id"].startswith("tr_")
    assert transfer["object"] == "transfer"
    assert transfer["amount"] == 39_000
    assert transfer["currency"] == "cny"
    assert transfer["destination"] == CONNECTED
    assert transfer["transfer_group"] == f"settlement_{settlement.pk}"
    assert transfer["metadata"] == {"settlement_id": str(settlement.pk)}
    assert settlement.payout_state == Settlement.PayoutState.PAID
    assert settlement.payout_reference == transfer["id"]
    assert settlement.paid_at is not None
    assert payout_message(settlement).state == "sent"
    entry = JournalEntry.objects.get(code="payout")
    assert entry.idempotency_key == f"payout:{settlement.pk}"
    assert entry.actor_label == "gateway:stripe"
    assert settlement_balance(gym.merchant) == 0
    assert not BankTransaction.objects.exists()  # the sandbox bank took no part
    assert_ledger_verifies()


def test_settling_again_makes_no_second_transfer(day_of_business, stripe_fake):
    run = settle()

    settle()
    again = settle(when="2026-03-03 09:00 +0800")
    with at("2026-03-03 09:00 +0800"):
        assert payouts_deliver(run=run) == 0

    assert again.pk == run.pk
    assert Settlement.objects.count() == 1
    assert len(stripe_fake.requests_to("POST", "/v1/transfers")) == 1
    assert len(stripe_fake.transfers) == 1
    assert JournalEntry.objects.filter(code="payout").count() == 1
    assert_ledger_verifies()


def test_a_transfer_that_meets_server_errors_is_retried_by_the_outbox_and_made_once(day_of_business, stripe_fake):
    gym = day_of_business
    stripe_fake.fail_next(2, status=500, path="/v1/transfers")

    settle()

    settlement = settlement_of(gym.merchant)
    message = payout_message(settlement)
    assert (message.state, message.attempts) == ("pending", 1)
    assert "APIError (500)" in message.last_error
    assert settlement.payout_state == Settlement.PayoutState.PENDING
    assert settlement_balance(gym.merchant) == 39_000
    with after_backoff(message):
        assert outbox_deliver(message_id=message.pk) == "retry"
    message.refresh_from_db()
    with after_backoff(message):
        assert outbox_sweep_task() == 1  # the periodic sweep finds it due

    calls = stripe_fake.requests_to("POST", "/v1/transfers")
    assert [c.status for c in calls] == [500, 500, 200]
    assert {c.idempotency_key for c in calls} == {f"payout:{settlement.pk}"}
    assert_paid_by_one_transfer(settlement, stripe_fake)
    assert payout_message(settlement).state == "sent"
    assert settlement_balance(gym.merchant) == 0


def test_a_transfer_whose_answer_was_lost_is_found_not_made_twice(day_of_business, stripe_fake):
    gym = day_of_business
    stripe_fake.drop_next(1)

    settle()

    settlement = settlement_of(gym.merchant)
    assert settlement.payout_state == Settlement.PayoutState.PENDING
    message = payout_message(settlement)
    with after_backoff(message):
        assert outbox_deliver(message_id=message.pk) == "sent"

    # The retry looks in the settlement's transfer group first and finds the transfer made.
    calls = stripe_fake.requests_to("POST", "/v1/transfers")
    assert [(c.dropped, c.replayed) for c in calls] == [(True, False)]
    lookups = stripe_fake.requests_to("GET", "/v1/transfers")
    assert [c.params["transfer_group"] for c in lookups] == [f"settlement_{settlement.pk}"] * 2
    assert_paid_by_one_transfer(settlement, stripe_fake)


def test_a_payout_retried_after_stripe_forgot_its_key_is_not_paid_twice(day_of_business, stripe_fake):
    gym = day_of_business
    stripe_fake.drop_next(1)
    settle()
    settlement = settlement_of(gym.merchant)
    stripe_fake.forget_keys()  # the retry comes after Stripe pruned the key (24 hours)

    message = payout_message(settlement)
    with after_backoff(message):
        assert outbox_deliver(message_id=message.pk) == "sent"

    assert_paid_by_one_transfer(settlement, stripe_fake)


def test_a_transfer_stripe_refuses_fails_the_settlement_and_the_money_stays_with_the_merchant(
    day_of_business, stripe_fake
):
    gym = day_of_business
    stripe_fake.fail_next(1, status=400, path="/v1/transfers")

    settle()

    settlement = settlement_of(gym.merchant)
    assert settlement.payout_state == Settlement.PayoutState.FAILED
    assert "InvalidRequestError (400)" in settlement.held_reason
    assert (payout_message(settlement).state, payout_message(settlement).attempts) == ("dead", 1)
    assert not stripe_fake.transfers
    assert not JournalEntry.objects.filter(code="payout").exists()
    assert settlement_balance(gym.merchant) == 39_000
    assert_ledger_verifies()


def test_a_merchant_without_a_connected_account_is_held_and_gets_no_transfer(day_of_business, stripe_fake):
    paid = day_of_business
    unconnected = gym_with_cards(stripe_fake, stripe_account_id="", cards=2)
    with at(DURING_THE_DAY):
        for card in unconnected.cards:
            use(card)

    settle()

    held = settlement_of(unconnected.merchant)
    assert held.payout_state == Settlement.PayoutState.HELD
    assert held.held_reason
    assert held.payout_reference == ""
    assert held.payout_amount == 20_000
    assert settlement_balance(unconnected.merchant) == 20_000  # still the merchant's, at custody
    (transfer,) = stripe_fake.transfers_made()  # only the connected gym was paid
    assert transfer["destination"] == CONNECTED
    assert settlement_of(paid.merchant).payout_reference == transfer["id"]
    assert {c.idempotency_key for c in stripe_fake.requests_to("POST", "/v1/transfers")} == {
        f"payout:{settlement_of(paid.merchant).pk}"
    }
    assert JournalEntry.objects.filter(code="payout").count() == 1
    assert_ledger_verifies()


def test_a_held_payout_is_paid_once_the_merchant_has_a_connected_account(day_of_business, stripe_fake):
    unconnected = gym_with_cards(stripe_fake, stripe_account_id="", cards=2)
    with at(DURING_THE_DAY):
        for card in unconnected.cards:
            use(card)
    settle()
    held = settlement_of(unconnected.merchant)
    assert held.payout_state == Settlement.PayoutState.HELD

    Merchant.objects.filter(pk=unconnected.merchant.pk).update(stripe_account_id="acct_later")
    settlement_payout_retry(settlement_id=held.pk)
    settlement_payout_retry(settlement_id=held.pk)  # asking twice sends once

    paid = settlement_of(unconnected.merchant)
    assert paid.payout_state == Settlement.PayoutState.PAID
    transfers = [t for t in stripe_fake.transfers_made() if t["destination"] == "acct_later"]
    assert len(transfers) == 1 and transfers[0]["amount"] == 20_000
    assert settlement_balance(unconnected.merchant) == 0
    assert_ledger_verifies()


def test_a_failed_payout_sent_again_by_an_operator_is_paid_once(day_of_business, stripe_fake):
    gym = day_of_business
    stripe_fake.fail_next(1, status=400, path="/v1/transfers")
    settle()
    assert settlement_of(gym.merchant).payout_state == Settlement.PayoutState.FAILED

    settlement_payout_retry(settlement_id=settlement_of(gym.merchant).pk)

    assert settlement_of(gym.merchant).payout_state == Settlement.PayoutState.PAID
    assert len(stripe_fake.transfers_made()) == 1
    assert settlement_balance(gym.merchant) == 0
    assert_ledger_verifies()


# --- custody balance -----------------------------------------------------------------------------


def test_custody_balance_is_stripes_charges_less_refunds_less_transfers(day_of_business, stripe_fake, monkeypatch):
    settle()
    charges = sum(c["amount"] for c in stripe_fake.charges.values())
    refunds = sum(r["amount"] for r in stripe_fake.refunds.values())
    transfers = sum(t["amount"] for t in stripe_fake.transfers.values())
    assert (charges, refunds, transfers) == (300_000, 81_000, 39_000)
    monkeypatch.setattr(stripe_gateway, "BALANCE_PAGE_SIZE", 2)  # 5 transactions: 3 pages

    held = StripeGateway().custody_balance()

    assert held == charges - refunds - transfers == 180_000
    assert held == stripe_fake.balance_total() == custody()  # Stripe's statement agrees with the ledger
    pages = stripe_fake.requests_to("GET", "/v1/balance_transactions")
    assert len(pages) == 3
    assert [p.params.get("starting_after") is None for p in pages] == [True, False, False]
    assert {p.params["limit"] for p in pages} == {"2"}
    assert_ledger_verifies()


def test_stripes_statement_lists_newest_first_and_pages_like_stripe(day_of_business, stripe_fake):
    settle()
    client = StripeGateway().client

    first = client.v1.balance_transactions.list({"limit": 2})
    rest = client.v1.balance_transactions.list({"limit": 10, "starting_after": first.data[-1].id})

    assert first.has_more and not rest.has_more
    listed = [*first.data, *rest.data]
    assert [t.type for t in listed] == ["transfer", "refund", "charge", "charge", "charge"]
    assert [t.amount for t in listed] == [-39_000, -81_000, PRICE, PRICE, PRICE]
    assert all(t.id.startswith("txn_") and t.currency == "cny" for t in listed)
    (transfer,) = stripe_fake.transfers.values()
    assert listed[0].source == transfer["id"]
    assert transfer["balance_transaction"] == listed[0].id


def test_the_local_gateways_custody_balance_is_its_bank_statement(settings):
    settings.PAYMENT_GATEWAY = "local"
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=PRICE, sessions=10)
    with at(BOUGHT):
        cards = [builders.paid_card(pack) for _ in range(2)]
    with at(DURING_THE_DAY):
        for card in cards:
            use(card)
    settle()

    assert get_gateway().custody_balance() == 2 * PRICE - 20_000 == custody()
