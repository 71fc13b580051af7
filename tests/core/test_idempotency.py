"""The Idempotency-Key mechanism of API.md, through a real money-moving endpoint."""

import json

import pytest
import time_machine

from core.models import IdempotencyRecord
from escrow.models import Account, JournalEntry
from escrow.services import account_open
from tests.conftest import client_for
from tests.core.harness import CALLS
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.harness")]


@pytest.fixture
def card_account():
    return account_open(kind=Account.Kind.CARD_ESCROW, name="card")


@pytest.fixture
def client(consumer):
    return client_for(consumer)


def deposit(client, account, amount, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(
        "/harness/deposit",
        json.dumps({"account": account.id, "amount": amount}),
        content_type="application/json",
        **headers,
    )


def test_repeat_with_same_key_replays_first_response_and_moves_money_once(client, card_account):
    first = deposit(client, card_account, 500, key="abc-1")
    calls = CALLS["deposit"]
    second = deposit(client, card_account, 500, key="abc-1")
    assert (second.status_code, second.json()) == (first.status_code, first.json()) == (201, first.json())
    assert second["Idempotent-Replayed"] == "true"
    assert CALLS["deposit"] == calls  # the view did not run again
    assert Account.objects.get(pk=card_account.pk).balance == 500
    assert JournalEntry.objects.filter(code="purchase").count() == 1


def test_without_a_key_every_request_acts(client, card_account):
    deposit(client, card_account, 500)
    deposit(client, card_account, 500)
    assert Account.objects.get(pk=card_account.pk).balance == 1000


def test_same_key_with_a_different_body_is_409(client, card_account):
    deposit(client, card_account, 500, key="abc-2")
    response = deposit(client, card_account, 501, key="abc-2")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert Account.objects.get(pk=card_account.pk).balance == 500


def test_same_key_from_another_caller_is_independent(client, card_account):
    other = client_for(UserFactory())
    deposit(client, card_account, 500, key="shared")
    response = deposit(other, card_account, 500, key="shared")
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Account.objects.get(pk=card_account.pk).balance == 1000


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "clé", "tab\there", "line\nbreak"], ids=["empty", "too-long", "non-ascii", "tab", "newline"]
)
def test_malformed_key_is_400(client, card_account, key):
    response = deposit(client, card_account, 500, key=key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert Account.objects.get(pk=card_account.pk).balance == 0


@pytest.mark.parametrize("key", ["a", "x" * 255, "~!@#$%^&*() printable"])
def test_keys_of_1_to_255_printable_ascii_are_accepted(client, card_account, key):
    assert deposit(client, card_account, 1, key=key).status_code == 201


def test_an_error_response_is_replayed_too(client):
    missing = Account(pk=424242)
    first = deposit(client, missing, 10, key="err")
    assert first.status_code == 404
    second = deposit(client, missing, 10, key="err")
    assert (second.status_code, second.json()) == (404, first.json())
    assert second["Idempotent-Replayed"] == "true"


def test_a_response_is_replayed_for_24_hours_and_money_never_moves_twice_after(client, card_account):
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        deposit(client, card_account, 100, key="day")
    with time_machine.travel("2026-03-03 09:59 +0800", tick=False):
        assert deposit(client, card_account, 100, key="day")["Idempotent-Replayed"] == "true"
    with time_machine.travel("2026-03-03 10:01 +0800", tick=False):
        response = deposit(client, card_account, 100, key="day")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    # The stored response is gone, but the ledger still knows the key: nothing is deposited twice.
    assert Account.objects.get(pk=card_account.pk).balance == 100


def test_purge_deletes_records_past_the_replay_window(client, card_account):
    from core.idempotency import idempotency_purge

    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        deposit(client, card_account, 100, key="old")
    with time_machine.travel("2026-03-03 09:00 +0800", tick=False):
        deposit(client, card_account, 100, key="new")
        assert idempotency_purge() == 0
    with time_machine.travel("2026-03-03 10:30 +0800", tick=False):
        assert idempotency_purge() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def test_a_request_still_in_flight_is_409_and_a_stale_one_is_taken_over(client, card_account, consumer):
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        deposit(client, card_account, 100, key="inflight")
    record = IdempotencyRecord.objects.get(key="inflight")
    # As if a first request reserved the key and died before answering:
    IdempotencyRecord.objects.filter(pk=record.pk).update(state="started", status_code=None, response_body=None)
    with time_machine.travel("2026-03-02 10:00:30 +0800", tick=False):
        busy = deposit(client, card_account, 100, key="inflight")
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_request_in_progress"
    with time_machine.travel("2026-03-02 10:02 +0800", tick=False):
        retried = deposit(client, card_account, 100, key="inflight")
    # The retry runs, but the ledger's own key (derived from the request key) already posted: no second deposit.
    assert retried.status_code == 201
    assert Account.objects.get(pk=card_account.pk).balance == 100
