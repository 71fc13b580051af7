"""Payments and refunds under PAYMENT_GATEWAY=stripe: the real API, services, outbox and ``stripe``
library, against the fake Stripe of ``tests.stripe_fake``.

The tests run with ``transaction=True``: the services commit for real, so the outbox's delivery
runs at the refund's real commit (``on_commit`` → the eager Celery task), the webhook's
``payment_settle`` is a real durable transaction followed by the event's own insert, and a failed
attempt is rolled back as it would be in production. Capturing ``on_commit`` callbacks inside the
test's wrapping transaction would run the same code, but none of it would ever commit.
"""

import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from consumers.models import Card, Payment
from consumers.services import consumer_register
from core.models import OutboxMessage
from core.outbox import outbox_deliver
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_verify
from merchants.registry import uscc_check_character
from merchants.services.merchants import merchant_register, product_create
from payments.gateways.stripe import StripeGateway
from payments.models import StripeEvent
from refunds.models import Refund
from tests import stripe_fake as fake_stripe
from tests.conftest import client_for
from tests.stripe_fake import event_payload, sign_payload

stripe_fake = fake_stripe.stripe_fake  # the fixture, for pytest to find under its name

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.payments.urls")]

PASSWORD = "correct-horse-battery-staple"
LICENSE = "91110105MA01PAYM1" + uscc_check_character("91110105MA01PAYM1")
PRICE = 120000  # fen: ¥1,200.00
WEBHOOK = "/api/v1/webhooks/stripe"


@pytest.fixture
def shop(stripe_fake):
    merchant = merchant_register(
        username="gym",
        password=PASSWORD,
        name="朝阳健身工作室",
        license_number=LICENSE,
        category="fitness",
        district="110105",
        address="北京市朝阳区建国路88号",
    )
    product = product_create(merchant=merchant, name="私教十次卡", kind="session_pack", price=PRICE, sessions=10)
    consumer = consumer_register(username="li", password=PASSWORD, display_name="李小明", phone="13812341234")
    return SimpleNamespace(product=product, consumer=consumer, client=client_for(consumer.user))


def purchase(shop) -> dict:
    response = shop.client.post("/api/v1/cards", {"product": str(shop.product.pk)}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def intent_of(fake, card: dict) -> dict:
    (intent,) = [pi for pi in fake.payment_intents.values() if pi["metadata"].get("card_id") == card["id"]]
    return intent


def deliver(payload: bytes, signature: str | None = None):
    signature = sign_payload(payload) if signature is None else signature
    return APIClient().post(WEBHOOK, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature)


def paid_card(shop, fake) -> dict:
    """A card bought and paid: Stripe charged it and told us by webhook."""
    card = purchase(shop)
    intent = fake.payment_succeed(intent_of(fake, card)["id"])
    response = deliver(event_payload("payment_intent.succeeded", intent))
    assert response.json() == {"received": True, "result": "handled"}
    return card


def request_refund(shop, card: dict) -> Refund:
    response = shop.client.post(f"/api/v1/cards/{card['id']}/refunds", {"reason": "cooling_off"}, format="json")
    assert response.status_code == 201, response.content
    return Refund.objects.get(pk=response.json()["id"])


def assert_ledger_verifies() -> None:
    report = ledger_verify()
    assert report["problems"] == []
    assert report["balanced"] and report["chain_ok"] and report["custody_matches"] and report["accounts_match"]


def balance(kind: str) -> int:
    """Every account of ``kind`` together: the city-wide one and each merchant's."""
    return Account.objects.filter(kind=kind).aggregate(total=Sum("balance"))["total"] or 0


def message_of(refund: Refund) -> OutboxMessage:
    return OutboxMessage.objects.get(idempotency_key=f"refund:{refund.pk}")


def after_backoff(message: OutboxMessage):
    return time_machine.travel(message.next_attempt_at + timedelta(seconds=1))


# --- payments ------------------------------------------------------------------------------------


def test_a_keyed_purchase_holds_no_transaction_open_while_it_asks_stripe(shop, stripe_fake, monkeypatch):
    open_while_asking = []
    create = StripeGateway.payment_create

    def watched(self, **kwargs):
        open_while_asking.append(connection.in_atomic_block)
        return create(self, **kwargs)

    monkeypatch.setattr(StripeGateway, "payment_create", watched)
    buy = {"product": str(shop.product.pk)}
    first = shop.client.post("/api/v1/cards", buy, format="json", HTTP_IDEMPOTENCY_KEY="buy-1")
    assert first.status_code == 201 and open_while_asking == [False]

    again = shop.client.post("/api/v1/cards", buy, format="json", HTTP_IDEMPOTENCY_KEY="buy-1")
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert len(stripe_fake.requests_to("POST", "/v1/payment_intents")) == 1


def test_purchase_creates_one_payment_intent_in_fen_for_the_card(shop, stripe_fake):
    card = purchase(shop)

    (call,) = stripe_fake.requests_to("POST", "/v1/payment_intents")
    assert call.idempotency_key == f"payment:{card['id']}"
    assert call.params["amount"] == str(PRICE)
    assert call.params["currency"] == "cny"
    assert call.params["metadata"] == {"card_id": card["id"]}
    intent = intent_of(stripe_fake, card)
    assert card["state"] == "pending_payment"
    assert card["payment"]["gateway"] == "stripe"
    assert card["payment"]["client_secret"] == intent["client_secret"]
    assert Payment.objects.get(card_id=card["id"]).external_id == intent["id"]


def test_purchase_after_a_stripe_outage_retries_under_the_same_payment_key(shop, stripe_fake):
    stripe_fake.fail_next(1, status=500)
    first = shop.client.post(
        "/api/v1/cards", {"product": str(shop.product.pk)}, format="json", HTTP_IDEMPOTENCY_KEY="buy-1"
    )
    assert first.status_code == 503
    assert first.json()["code"] == "gateway_unavailable"

    again = shop.client.post(
        "/api/v1/cards", {"product": str(shop.product.pk)}, format="json", HTTP_IDEMPOTENCY_KEY="buy-1"
    )

    assert again.status_code == 201
    card = again.json()
    assert Card.objects.count() == 1
    assert [c.idempotency_key for c in stripe_fake.requests_to("POST", "/v1/payment_intents")] == [
        f"payment:{card['id']}"
    ] * 2
    assert len(stripe_fake.payment_intents) == 1
    assert card["payment"]["client_secret"] == intent_of(stripe_fake, card)["client_secret"]


def test_succeeded_webhook_puts_the_price_in_escrow_and_starts_cooling_off(shop, stripe_fake):
    card = purchase(shop)
    intent = stripe_fake.payment_succeed(intent_of(stripe_fake, card)["id"])

    response = deliver(event_payload("payment_intent.succeeded", intent))

    assert response.status_code == 200
    assert response.json() == {"received": True, "result": "handled"}
    got = shop.client.get(f"/api/v1/cards/{card['id']}").json()
    assert got["state"] == "cooling_off"
    assert got["payment"]["status"] == "succeeded"
    assert got["escrow_balance"] == PRICE
    assert JournalEntry.objects.get(code="purchase").idempotency_key == f"purchase:{card['id']}"
    assert balance("custody") == PRICE
    assert_ledger_verifies()


def test_the_same_event_delivered_twice_acts_once(shop, stripe_fake):
    card = purchase(shop)
    payload = event_payload("payment_intent.succeeded", stripe_fake.payment_succeed(intent_of(stripe_fake, card)["id"]))

    first = deliver(payload)
    second = deliver(payload)

    assert first.json()["result"] == "handled"
    assert second.status_code == 200
    assert second.json() == {"received": True, "result": "duplicate"}
    assert StripeEvent.objects.count() == 1
    assert JournalEntry.objects.filter(code="purchase").count() == 1
    assert Card.objects.get(pk=card["id"]).escrow_account.balance == PRICE
    assert_ledger_verifies()


@pytest.mark.postgres
def test_the_same_event_delivered_concurrently_acts_once(shop, stripe_fake):
    card = purchase(shop)
    payload = event_payload("payment_intent.succeeded", stripe_fake.payment_succeed(intent_of(stripe_fake, card)["id"]))
    start = threading.Barrier(4)
    results: list[str] = []

    def delivery() -> None:
        try:
            start.wait()
            results.append(deliver(payload).json()["result"])
        finally:
            connection.close()

    threads = [threading.Thread(target=delivery) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["duplicate", "duplicate", "duplicate", "handled"]
    assert JournalEntry.objects.filter(code="purchase").count() == 1
    assert Card.objects.get(pk=card["id"]).escrow_account.balance == PRICE
    assert_ledger_verifies()


def test_payment_failed_webhook_leaves_the_card_payable_and_a_later_success_settles_it(shop, stripe_fake):
    card = purchase(shop)
    intent = stripe_fake.payment_fail(intent_of(stripe_fake, card)["id"])

    response = deliver(event_payload("payment_intent.payment_failed", intent))

    assert response.json() == {"received": True, "result": "noted"}
    assert Card.objects.get(pk=card["id"]).state == "pending_payment"
    assert not JournalEntry.objects.exists()
    succeeded = dict(intent_of(stripe_fake, card), status="succeeded")
    assert deliver(event_payload("payment_intent.succeeded", succeeded)).json()["result"] == "handled"
    assert Card.objects.get(pk=card["id"]).state == "cooling_off"


def test_canceled_webhook_cancels_the_card(shop, stripe_fake):
    card = purchase(shop)
    canceled = dict(intent_of(stripe_fake, card), status="canceled")

    response = deliver(event_payload("payment_intent.canceled", canceled))

    assert response.json() == {"received": True, "result": "handled"}
    assert Card.objects.get(pk=card["id"]).state == "cancelled"
    assert Payment.objects.get(card_id=card["id"]).status == "failed"
    assert not JournalEntry.objects.exists()


def test_a_cancellation_reported_after_the_payment_succeeded_changes_nothing(shop, stripe_fake):
    card = paid_card(shop, stripe_fake)
    late = dict(intent_of(stripe_fake, card), status="canceled")

    response = deliver(event_payload("payment_intent.canceled", late))

    assert response.json() == {"received": True, "result": "stale"}
    assert Card.objects.get(pk=card["id"]).state == "cooling_off"


def test_events_of_other_types_are_ignored(shop, stripe_fake):
    response = deliver(event_payload("customer.created", {"id": "cus_1", "object": "customer"}))

    assert response.json() == {"received": True, "result": "ignored"}


def test_a_wrong_signature_is_refused(shop, stripe_fake):
    card = purchase(shop)
    payload = event_payload("payment_intent.succeeded", stripe_fake.payment_succeed(intent_of(stripe_fake, card)["id"]))

    response = deliver(payload, sign_payload(payload, secret="whsec_someone_else"))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert Card.objects.get(pk=card["id"]).state == "pending_payment"
    assert not StripeEvent.objects.exists()


def test_a_delivery_without_signature_is_refused(shop, stripe_fake):
    response = deliver(event_payload("customer.created", {"id": "cus_1", "object": "customer"}), signature="")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"


def test_a_signature_older_than_the_tolerance_is_refused(shop, stripe_fake):
    card = purchase(shop)
    payload = event_payload("payment_intent.succeeded", stripe_fake.payment_succeed(intent_of(stripe_fake, card)["id"]))
    stale = int(timezone.now().timestamp()) - settings.STRIPE_WEBHOOK_TOLERANCE - 10

    response = deliver(payload, sign_payload(payload, timestamp=stale))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert Card.objects.get(pk=card["id"]).state == "pending_payment"


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"[1, 2, 3]", b'{"object": "event", "id": "evt_1"}', b"\xff\xfe"],
    ids=["not-json", "not-an-object", "no-type-or-data", "not-utf8"],
)
def test_a_malformed_payload_is_refused(shop, stripe_fake, payload):
    response = deliver(payload)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()


def test_simulating_a_payment_is_not_found_under_stripe(shop, stripe_fake):
    card = purchase(shop)

    response = shop.client.post(
        f"/api/v1/payments/{card['payment']['id']}/simulate", {"outcome": "succeeded"}, format="json"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert Card.objects.get(pk=card["id"]).state == "pending_payment"


def test_the_webhook_is_not_found_under_the_local_gateway(shop, stripe_fake, settings):
    settings.PAYMENT_GATEWAY = "local"

    response = deliver(event_payload("customer.created", {"id": "cus_1", "object": "customer"}))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- refunds -------------------------------------------------------------------------------------


def test_a_refund_is_sent_to_stripe_once_through_the_outbox_and_paid(shop, stripe_fake):
    card = paid_card(shop, stripe_fake)
    intent = intent_of(stripe_fake, card)

    refund = request_refund(shop, card)

    (call,) = stripe_fake.requests_to("POST", "/v1/refunds")
    assert call.idempotency_key == f"refund:{refund.pk}"
    assert call.params == {
        "payment_intent": intent["id"],
        "amount": str(PRICE),
        "metadata": {"idempotency_key": f"refund:{refund.pk}"},
    }
    (stripe_refund,) = stripe_fake.refunds.values()
    refund.refresh_from_db()
    assert refund.state == "paid"
    assert refund.external_id == stripe_refund["id"]
    assert message_of(refund).state == "sent"
    entry = JournalEntry.objects.get(code="refund_paid")
    assert entry.idempotency_key == f"refund-paid:{refund.pk}"
    assert balance("refund_payable") == 0
    assert balance("custody") == 0
    assert_ledger_verifies()


def test_a_refund_that_meets_server_errors_is_retried_and_refunds_once(shop, stripe_fake):
    card = paid_card(shop, stripe_fake)
    stripe_fake.fail_next(2, status=500, path="/v1/refunds")

    refund = request_refund(shop, card)
    message = message_of(refund)
    assert (message.state, message.attempts) == ("pending", 1)
    with after_backoff(message):
        assert outbox_deliver(message_id=message.pk) == "retry"
    message.refresh_from_db()
    with after_backoff(message):
        assert outbox_deliver(message_id=message.pk) == "sent"

    calls = stripe_fake.requests_to("POST", "/v1/refunds")
    assert [c.status for c in calls] == [500, 500, 200]
    assert {c.idempotency_key for c in calls} == {f"refund:{refund.pk}"}
    assert len(stripe_fake.refunds) == 1
    refund.refresh_from_db()
    assert refund.state == "paid"
    assert JournalEntry.objects.filter(code="refund_paid").count() == 1
    assert_ledger_verifies()


def test_a_refund_whose_answer_was_lost_is_replayed_not_sent_twice(shop, stripe_fake):
    card = paid_card(shop, stripe_fake)
    stripe_fake.drop_next(1)

    refund = request_refund(shop, card)
    assert Refund.objects.get(pk=refund.pk).state == "pending"
    message = message_of(refund)
    with after_backoff(message):
        assert outbox_deliver(message_id=message.pk) == "sent"

    calls = stripe_fake.requests_to("POST", "/v1/refunds")
    assert [(c.dropped, c.replayed) for c in calls] == [(True, False), (False, True)]
    (stripe_refund,) = stripe_fake.refunds.values()
    refund.refresh_from_db()
    assert (refund.state, refund.external_id) == ("paid", stripe_refund["id"])
    assert_ledger_verifies()


def test_a_refund_retried_after_stripe_forgot_its_key_is_found_not_sent_twice(shop, stripe_fake):
    card = paid_card(shop, stripe_fake)
    stripe_fake.drop_next(1)
    refund = request_refund(shop, card)
    message = message_of(refund)
    stripe_fake.forget_keys()

    # Within a day the key alone guards the retry; a day later the retry asks Stripe first.
    with time_machine.travel(message.created_at + timedelta(hours=25)):
        assert outbox_deliver(message_id=message.pk) == "sent"

    assert len(stripe_fake.requests_to("POST", "/v1/refunds")) == 1
    assert [c.params for c in stripe_fake.requests_to("GET", "/v1/refunds")] == [
        {"payment_intent": intent_of(stripe_fake, card)["id"], "limit": "100"}
    ]
    (stripe_refund,) = stripe_fake.refunds.values()
    refund.refresh_from_db()
    assert (refund.state, refund.external_id) == ("paid", stripe_refund["id"])
    assert JournalEntry.objects.filter(code="refund_paid").count() == 1
    assert_ledger_verifies()


@pytest.mark.parametrize("with_refunds", [True, False], ids=["refunds-in-event", "refunds-listed-from-stripe"])
def test_charge_refunded_webhook_marks_paid_a_refund_whose_answer_was_lost(shop, stripe_fake, with_refunds):
    card = paid_card(shop, stripe_fake)
    stripe_fake.drop_next(1)
    refund = request_refund(shop, card)
    charge = stripe_fake.charge_of(intent_of(stripe_fake, card)["id"], with_refunds=with_refunds)

    response = deliver(event_payload("charge.refunded", charge))

    assert response.json() == {"received": True, "result": "handled"}
    (stripe_refund,) = stripe_fake.refunds.values()
    refund.refresh_from_db()
    assert (refund.state, refund.external_id) == ("paid", stripe_refund["id"])
    message = message_of(refund)
    with after_backoff(message):
        assert outbox_deliver(message_id=message.pk) == "sent"  # finds it paid: sends nothing
    assert len(stripe_fake.requests_to("POST", "/v1/refunds")) == 1
    assert JournalEntry.objects.filter(code="refund_paid").count() == 1
    assert_ledger_verifies()


def test_a_refund_stripe_refuses_is_failed_and_the_money_stays_payable(shop, stripe_fake):
    card = paid_card(shop, stripe_fake)
    stripe_fake.fail_next(1, status=400, path="/v1/refunds")

    refund = request_refund(shop, card)

    refund.refresh_from_db()
    assert refund.state == "failed"
    assert "InvalidRequestError (400)" in refund.failure_reason
    message = message_of(refund)
    assert (message.state, message.attempts) == ("dead", 1)
    assert not stripe_fake.refunds
    assert balance("refund_payable") == PRICE
    assert balance("custody") == PRICE
    assert not JournalEntry.objects.filter(code="refund_paid").exists()
    assert_ledger_verifies()
