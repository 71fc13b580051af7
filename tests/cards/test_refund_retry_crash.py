"""Paid once whatever crashes: the sandbox bank refuses a refund until it is ``failed``; the regulator
sends it again with ``manage.py retry_refunds`` in a process killed (SIGKILL) between the bank's
payment and the commit; the next delivery pays it. The consumer is paid exactly once and the
ledger verifies."""

import os
import signal
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.db import connection

from core.outbox import outbox_deliver_many, outbox_due_ids
from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from payments.models import BankTransaction
from refunds.models import Refund
from refunds.services import refund_request
from tests.cards import builders
from tests.settlement.test_settlement_crash import ROOT, database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def manage(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_DEBUG": "1", "CELERY_TASK_ALWAYS_EAGER": "1"}
    env.pop("FAULT_KILL_AT", None)
    env.pop("SANDBOX_REFUSE_REFUNDS", None)
    if kill_at:
        env["FAULT_KILL_AT"] = kill_at
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_failed_refund_retried_through_a_crash_is_paid_exactly_once(settings):
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=100_000))
    settings.SANDBOX_REFUSE_REFUNDS = True
    settings.OUTBOX_MAX_ATTEMPTS = 2
    settings.OUTBOX_RETRY_SECONDS = 0
    refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    outbox_deliver_many(message_ids=outbox_due_ids())  # both attempts refused: failed
    refund.refresh_from_db()
    assert (refund.state, refund.attempts) == ("failed", 2) and "refuses" in refund.last_error
    settings.SANDBOX_REFUSE_REFUNDS = False

    connection.close()
    crashed = manage("retry_refunds", str(refund.pk), kill_at="refund.after_gateway")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    refund.refresh_from_db()
    assert refund.state == "pending"  # the retry committed; its delivery died with the process
    assert not BankTransaction.objects.filter(kind="refund").exists()

    outbox_deliver_many(message_ids=outbox_due_ids())  # the sweep, after the crash
    outbox_deliver_many(message_ids=outbox_due_ids())  # and again: nothing left to send
    refund.refresh_from_db()
    assert refund.state == "paid" and refund.attempts == 3
    assert BankTransaction.objects.filter(kind="refund").count() == 1
    assert JournalEntry.objects.filter(code="refund_paid").count() == 1
    assert ledger_ok(ledger_verify())
    call_command("verify_ledger")

    again = manage("retry_refunds", str(refund.pk))
    assert again.returncode == 1 and "refund_not_failed" in again.stdout
    assert Refund.objects.get(pk=refund.pk).state == "paid"
