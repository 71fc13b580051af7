"""A view under ``@idempotent`` runs at most once per request, whatever the key's state: the
situations that once rolled a request back and ran its view a second time (the classic way) now
each take one path, chosen before the view runs.

The views counted are the real ones (the card purchase and the redemption confirmation of
consumers/api.py, their own bodies) declared again here with a counter around them, and one more view
whose last write fails after it has answered. A run is counted when the body answers or refuses. A
request whose key's record decides it (a replay, a 409) is stopped at the view's first statement,
before that statement runs: the reservation travels in front of it and fails. That stop is counted
apart (``STOPPED``); nothing of the view's ran."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, connections
from django.urls import include, path
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from consumers.api import CardListCreateApi, RedemptionConfirmApi
from consumers.models import Card
from core import clock, sql
from core.gateways import gateway_in_database
from core.idempotency import idempotent
from core.models import IdempotencyRecord
from escrow.models import Account, JournalEntry
from escrow.services import account_open
from tests.cards import builders
from tests.conftest import client_for

RUNS: list[str] = []  # one item per run of a counted view's body (list.append is atomic across threads)
STOPPED: list[str] = []  # one item per body stopped at its first statement by its key's record


def _counted(name, body):
    """Run ``body`` and count it: a run when it answers or refuses (an ``Exception``); a stop when
    the key's record stops it (``core.idempotency`` raises a ``BaseException`` for that, so that no
    view can take it for its own error)."""
    try:
        response = body()
    except Exception:
        RUNS.append(name)
        raise
    except BaseException:
        STOPPED.append(name)
        raise
    RUNS.append(name)
    return response


class CountedCardPurchaseApi(CardListCreateApi):
    @idempotent(atomic=gateway_in_database, keyed=True)
    def post(self, request):
        return _counted("purchase", lambda: CardListCreateApi.post.__wrapped__(self, request))


class CountedRedemptionConfirmApi(RedemptionConfirmApi):
    @idempotent(atomic=True)
    def post(self, request, redemption_id):
        return _counted("confirm", lambda: RedemptionConfirmApi.post.__wrapped__(self, request, redemption_id))


class LastWriteFailsApi(APIView):
    """Answers 201, but its last write (waiting to go with the stored response) breaks the account
    table's primary key: the transaction fails after the view has answered."""

    @idempotent(atomic=True)
    def post(self, request):
        RUNS.append("last-write-fails")
        taken = account_open(kind=Account.Kind.CARD_ESCROW, name="taken")
        sql.insert(Account(pk=taken.pk, kind=Account.Kind.CARD_ESCROW, name="again", created_at=clock.now()))
        return Response({"account": taken.pk}, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("counted/cards", CountedCardPurchaseApi.as_view()),
    path("counted/redemptions/<str:redemption_id>/confirm", CountedRedemptionConfirmApi.as_view()),
    path("counted/last-write-fails", LastWriteFailsApi.as_view()),
    path("", include("config.urls")),
]

pytestmark = pytest.mark.urls(__name__)


def _stopped(*names):
    """What ``STOPPED`` holds after requests the key's record decided: on PostgreSQL their
    reservation travels with the view's first statement, which stops the view there; elsewhere it
    is sent before the view, which then does not start."""
    return list(names) if connections["default"].vendor == "postgresql" else []


@pytest.fixture(autouse=True)
def _runs():
    RUNS.clear()
    STOPPED.clear()
    yield
    RUNS.clear()
    STOPPED.clear()


def _buy(client, product, key):
    return client.post("/counted/cards", {"product": str(product.pk)}, format="json", HTTP_IDEMPOTENCY_KEY=key)


@pytest.mark.django_db
def test_a_fresh_key_runs_the_view_once_and_its_repeat_replays_without_running_it():
    product = builders.session_pack(builders.merchant())
    client = client_for(builders.consumer().user)
    first = _buy(client, product, "buy-1")
    again = _buy(client, product, "buy-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    assert RUNS == ["purchase"]
    assert _stopped("purchase") == STOPPED


@pytest.mark.django_db
def test_another_body_under_the_same_key_is_refused_without_running_the_view():
    merchant = builders.merchant()
    client = client_for(builders.consumer().user)
    _buy(client, builders.session_pack(merchant), "buy-2")
    other = _buy(client, builders.session_pack(merchant, sessions=20), "buy-2")
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")
    assert RUNS == ["purchase"]
    assert _stopped("purchase") == STOPPED


@pytest.mark.django_db
def test_a_purged_keys_repurchase_runs_the_view_once_and_answers_with_the_card_bought_before():
    product = builders.session_pack(builders.merchant())
    buyer = builders.consumer()
    client = client_for(buyer.user)
    first = _buy(client, product, "bought-last-month")
    IdempotencyRecord.objects.all().delete()  # as idempotency_purge does after the replay window
    second = _buy(client, product, "bought-last-month")
    assert second.status_code == 201 and second.json()["id"] == first.json()["id"]
    assert Card.objects.filter(consumer=buyer).count() == 1
    assert IdempotencyRecord.objects.get(key="bought-last-month").state == IdempotencyRecord.State.COMPLETED
    assert RUNS == ["purchase", "purchase"]  # once per request
    assert STOPPED == []


@pytest.mark.django_db
def test_a_stale_reservation_is_taken_over_by_one_run_and_a_live_one_is_409_without_a_run():
    product = builders.session_pack(builders.merchant())
    buyer = builders.consumer()
    client = client_for(buyer.user)
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        first = _buy(client, product, "died")
    # As if the first request had reserved the key and died before answering:
    IdempotencyRecord.objects.filter(key="died").update(state="started", status_code=None, response_body=None)
    with time_machine.travel("2026-03-02 10:00:30 +0800", tick=False):
        busy = _buy(client, product, "died")
    assert (busy.status_code, busy.json()["code"]) == (409, "idempotency_request_in_progress")
    assert RUNS == ["purchase"]
    assert _stopped("purchase") == STOPPED
    with time_machine.travel("2026-03-02 10:02 +0800", tick=False):
        retried = _buy(client, product, "died")
    assert retried.status_code == 201 and retried.json()["id"] == first.json()["id"]
    assert RUNS == ["purchase", "purchase"]
    # stopped at its first statement by the stale record, then run once in the transaction that took it over
    assert _stopped("purchase", "purchase") == STOPPED
    assert Card.objects.filter(consumer=buyer).count() == 1


@pytest.mark.django_db
def test_a_refusal_runs_the_view_once_is_stored_after_the_rollback_and_replayed_without_a_run():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    consumer = client_for(card.consumer.user)
    asked = client_for(card.merchant.user).post("/api/v1/redemptions", {"card": str(card.pk)}, format="json")
    url = f"/counted/redemptions/{asked.json()['id']}/confirm"
    with time_machine.travel(clock.now() + timedelta(minutes=16)):
        first = consumer.post(url, HTTP_IDEMPOTENCY_KEY="late")
        again = consumer.post(url, HTTP_IDEMPOTENCY_KEY="late")
    assert (first.status_code, first.json()["code"]) == (409, "redemption_expired")
    assert (again.status_code, again.json(), again["Idempotent-Replayed"]) == (409, first.json(), "true")
    assert not JournalEntry.objects.filter(code="release").exists()
    assert RUNS == ["confirm"]
    assert _stopped("confirm") == STOPPED


@pytest.mark.django_db
def test_a_transaction_that_fails_after_the_view_answered_does_not_run_the_view_again():
    client = client_for(builders.consumer().user)
    with pytest.raises(IntegrityError):
        client.post("/counted/last-write-fails", {}, format="json", HTTP_IDEMPOTENCY_KEY="fails")
    assert RUNS == ["last-write-fails"]
    assert not IdempotencyRecord.objects.filter(key="fails").exists()  # rolled back: a retry may run


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_requests_racing_with_one_key_run_the_view_once_and_the_others_wait_and_replay_it():
    product = builders.session_pack(builders.merchant())
    buyer = builders.consumer()
    barrier = threading.Barrier(4)
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

    threads = [threading.Thread(target=buy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(r.status_code for r in responses) == [201] * 4
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == 3
    assert RUNS == ["purchase"]
    assert sorted(STOPPED) == ["purchase"] * 3  # each stopped at its first statement, then replayed
    assert Card.objects.filter(consumer=buyer).count() == 1
