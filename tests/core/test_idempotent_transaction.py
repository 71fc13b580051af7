"""``@idempotent(atomic=True)``: a card request with a fresh key, its service's writes and its stored
response are one transaction; a refusal is stored after the rollback; a key whose record was purged
meets the card it bought inside a savepoint and answers with that card (the view runs once)."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connections

from consumers.models import Card, Redemption
from core import clock
from core.models import IdempotencyRecord
from escrow.models import JournalEntry
from tests.cards import builders
from tests.conftest import client_for


def _buy(client, product, key):
    return client.post("/api/v1/cards", {"product": str(product.pk)}, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_refusal_inside_the_request_transaction_is_stored_and_replayed():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    consumer = client_for(card.consumer.user)
    asked = client_for(card.merchant.user).post("/api/v1/redemptions", {"card": str(card.pk)}, format="json")
    redemption_id = asked.json()["id"]
    with time_machine.travel(clock.now() + timedelta(minutes=16)):
        first = consumer.post(f"/api/v1/redemptions/{redemption_id}/confirm", HTTP_IDEMPOTENCY_KEY="late")
        again = consumer.post(f"/api/v1/redemptions/{redemption_id}/confirm", HTTP_IDEMPOTENCY_KEY="late")
    assert (first.status_code, first.json()["code"]) == (409, "redemption_expired")
    assert (again.status_code, again.json()) == (409, first.json())
    assert again["Idempotent-Replayed"] == "true"
    record = IdempotencyRecord.objects.get(key="late")
    assert (record.state, record.status_code) == (IdempotencyRecord.State.COMPLETED, 409)
    assert not JournalEntry.objects.filter(code="release").exists()


@pytest.mark.django_db
def test_a_key_whose_record_was_purged_returns_the_card_already_bought():
    product = builders.session_pack(builders.merchant())
    buyer = builders.consumer()
    client = client_for(buyer.user)
    first = _buy(client, product, "bought-last-month")
    IdempotencyRecord.objects.all().delete()  # as idempotency_purge does after the replay window
    # In the request's transaction the card's insert meets its own purchase key inside a savepoint,
    # and the purchase finds the card bought before.
    second = _buy(client, product, "bought-last-month")
    assert second.status_code == 201 and second.json()["id"] == first.json()["id"]
    assert Card.objects.filter(consumer=buyer).count() == 1
    assert IdempotencyRecord.objects.get(key="bought-last-month").state == IdempotencyRecord.State.COMPLETED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_requests_with_one_key_make_one_card_and_the_later_ones_replay_it_without_waiting_errors():
    product = builders.session_pack(builders.merchant())
    buyer = builders.consumer()
    barrier = threading.Barrier(6)
    responses, errors = [], []

    def buy():
        try:
            client = client_for(buyer.user)
            barrier.wait()
            responses.append(_buy(client, product, "one-purchase"))
        except Exception as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=buy) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    # The later requests waited on the first one's reservation (its uncommitted row), then found
    # its stored response: none is told the request is still in flight.
    assert sorted(r.status_code for r in responses) == [201] * 6
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == 5
    assert Card.objects.filter(consumer=buyer).count() == 1


@pytest.mark.django_db
def test_a_confirmation_and_its_stored_response_are_written_together():
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000, sessions=10))
    asked = client_for(card.merchant.user).post("/api/v1/redemptions", {"card": str(card.pk)}, format="json")
    response = client_for(card.consumer.user).post(
        f"/api/v1/redemptions/{asked.json()['id']}/confirm", HTTP_IDEMPOTENCY_KEY="ok-1"
    )
    assert response.status_code == 200
    record = IdempotencyRecord.objects.get(key="ok-1")
    assert (record.state, record.status_code, record.response_body) == (
        IdempotencyRecord.State.COMPLETED,
        200,
        response.json(),
    )
    assert Redemption.objects.get(pk=asked.json()["id"]).state == Redemption.State.CONFIRMED
    assert builders.fresh(card).released_total == 10_000
