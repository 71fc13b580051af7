"""Refunds on time, or someone knows: every refund carries ``due_by``; the job marks the unpaid ones
overdue; a refund the gateway refuses counts its attempts, keeps the error, ends ``failed``, and the
regulator (API, page or command) sends it again under the same key, so it is paid once."""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from core import clock
from core.models import OutboxMessage
from core.outbox import outbox_deliver_many, outbox_due_ids
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from payments.models import BankTransaction
from refunds.models import Refund
from refunds.services import refund_request, refunds_mark_overdue
from regulator.models import AuditEvent
from tests.cards import builders
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def cooling_off_refund(capture) -> Refund:
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000))
    with capture(execute=True):
        refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    refund.refresh_from_db()
    return refund


@pytest.fixture
def refused(settings):
    """The sandbox bank refuses refunds; a refused refund is given up at once."""
    settings.SANDBOX_REFUSE_REFUNDS = True
    settings.OUTBOX_MAX_ATTEMPTS = 1
    return settings


def test_a_refund_paid_at_once_carries_its_deadline_and_one_attempt(django_capture_on_commit_callbacks):
    refund = cooling_off_refund(django_capture_on_commit_callbacks)
    assert refund.state == "paid" and refund.attempts == 1 and refund.last_error == ""
    assert refund.due_by == refund.created_at + timedelta(days=5) and not refund.overdue


def test_a_refused_refund_ends_failed_with_its_attempts_and_last_error(refused, django_capture_on_commit_callbacks):
    refund = cooling_off_refund(django_capture_on_commit_callbacks)
    assert refund.state == "failed" and refund.attempts == 1
    assert "refuses refunds" in refund.last_error
    assert not BankTransaction.objects.filter(kind="refund").exists()


def test_a_retried_attempt_is_counted_on_the_refund(settings, django_capture_on_commit_callbacks):
    settings.SANDBOX_REFUSE_REFUNDS = True
    settings.OUTBOX_MAX_ATTEMPTS = 3
    refund = cooling_off_refund(django_capture_on_commit_callbacks)
    assert refund.state == "pending" and refund.attempts == 1 and refund.last_error
    settings.SANDBOX_REFUSE_REFUNDS = False
    with time_machine.travel(clock.now() + timedelta(hours=1)):
        outbox_deliver_many(message_ids=outbox_due_ids())
    refund.refresh_from_db()
    assert refund.state == "paid" and refund.attempts == 2


def test_the_overdue_job_marks_unpaid_refunds_past_their_deadline_once(refused, django_capture_on_commit_callbacks):
    refund = cooling_off_refund(django_capture_on_commit_callbacks)
    assert refunds_mark_overdue() == 0
    later = refund.due_by + timedelta(minutes=1)
    with time_machine.travel(later):
        assert refund.overdue  # by the clock, before the job ran
        assert refunds_mark_overdue() == 1
        assert refunds_mark_overdue() == 0
    refund.refresh_from_db()
    assert refund.overdue_at is not None and refund.overdue


def test_regulator_lists_failed_and_overdue_refunds_with_merchant_and_age(
    refused, regulator, django_capture_on_commit_callbacks
):
    refund = cooling_off_refund(django_capture_on_commit_callbacks)
    client = client_for(regulator)
    body = client.get("/api/v1/regulator/refunds", {"state": "failed"}).json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["id"] == str(refund.pk) and row["merchant"]["name"] == refund.card.merchant.name
    assert row["attempts"] == 1 and "refuses" in row["last_error"] and row["age"] >= 0
    assert {"card", "amount", "reason", "state", "created_at", "due_by", "paid_at"} <= set(row)
    assert client.get("/api/v1/regulator/refunds", {"overdue": "true"}).json()["count"] == 0
    with time_machine.travel(refund.due_by + timedelta(hours=1)):
        assert client.get("/api/v1/regulator/refunds", {"overdue": "true"}).json()["count"] == 1


@pytest.mark.parametrize("query", [{"state": "lost"}, {"overdue": "maybe"}, {"ordering": "amount"}])
def test_regulator_refund_list_refuses_bad_filters(regulator, query):
    response = client_for(regulator).get("/api/v1/regulator/refunds", query)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_regulator_retry_sends_a_failed_refund_again_under_the_same_key(
    refused, regulator, django_capture_on_commit_callbacks
):
    refund = cooling_off_refund(django_capture_on_commit_callbacks)
    refused.SANDBOX_REFUSE_REFUNDS = False
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(regulator).post(f"/api/v1/regulator/refunds/{refund.pk}/retry")
    assert response.status_code == 202, response.content
    refund.refresh_from_db()
    assert refund.state == "paid" and refund.attempts == 2
    assert OutboxMessage.objects.filter(idempotency_key=f"refund:{refund.pk}").count() == 1
    assert BankTransaction.objects.filter(kind="refund").count() == 1
    assert JournalEntry.objects.filter(code="refund_paid").count() == 1
    assert AuditEvent.objects.filter(verb="refund_retry", actor=regulator, target=f"refund:{refund.pk}").exists()
    assert ledger_ok(ledger_verify())


def test_retrying_a_refund_that_is_not_failed_is_a_conflict(regulator, django_capture_on_commit_callbacks):
    refund = cooling_off_refund(django_capture_on_commit_callbacks)
    response = client_for(regulator).post(f"/api/v1/regulator/refunds/{refund.pk}/retry")
    assert response.status_code == 409 and response.json()["code"] == "refund_not_failed"


def test_retry_refunds_command_sends_every_failed_refund_and_reports(
    refused, django_capture_on_commit_callbacks, capsys
):
    first = cooling_off_refund(django_capture_on_commit_callbacks)
    second = cooling_off_refund(django_capture_on_commit_callbacks)
    refused.SANDBOX_REFUSE_REFUNDS = False
    with django_capture_on_commit_callbacks(execute=True):
        call_command("retry_refunds", "--all-failed")
    out = capsys.readouterr().out
    assert "2 of 2 refunds sent again" in out
    assert set(Refund.objects.filter(pk__in=[first.pk, second.pk]).values_list("state", flat=True)) == {"paid"}


def test_retry_refunds_command_fails_with_a_reason_for_a_refund_not_failed(django_capture_on_commit_callbacks):
    refund = cooling_off_refund(django_capture_on_commit_callbacks)
    with pytest.raises(CommandError, match="1 of 1 refunds could not be retried"):
        call_command("retry_refunds", str(refund.pk))
    with pytest.raises(CommandError, match="--all-failed"):
        call_command("retry_refunds")
