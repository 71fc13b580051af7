"""Kill the settling process (SIGKILL) between its steps, run it again: every merchant is paid
exactly once and nothing is left behind."""

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import time_machine
from django.db import connection

from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Settlement
from payments.models import BankTransaction
from tests.cards import builders
from tests.cards.test_redemptions import use

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    """The test database, for a subprocess to work on the same rows."""
    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    user = conf["USER"] or "postgres"
    return f"postgres://{user}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


def settle(*, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_DEBUG": "1", "CELERY_TASK_ALWAYS_EAGER": "1"}
    env.pop("FAULT_KILL_AT", None)
    if kill_at:
        env["FAULT_KILL_AT"] = kill_at
    connection.close()  # let the subprocess have the (SQLite) database to itself
    return subprocess.run(
        [sys.executable, "manage.py", "settle", "--date", "2026-03-02"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def busy_day():
    merchants = [builders.merchant() for _ in range(3)]
    with time_machine.travel("2026-02-20 10:00 +0800", tick=False):
        cards = [builders.paid_card(builders.session_pack(m, price=50_000, sessions=5)) for m in merchants]
    with time_machine.travel("2026-03-02 15:00 +0800", tick=False):
        for card in cards:
            use(card)
    return merchants


@pytest.mark.parametrize("kill_at", ["settlement.after_chunk", "payout.after_gateway"])
def test_settlement_killed_mid_way_completes_on_the_next_run_paying_each_merchant_once(busy_day, kill_at):
    crashed = settle(kill_at=kill_at)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]

    finished = settle()
    assert finished.returncode == 0, finished.stderr[-2000:]
    again = settle()
    assert again.returncode == 0, again.stderr[-2000:]

    settlements = Settlement.objects.filter(date=date(2026, 3, 2))
    assert settlements.count() == 3
    assert set(settlements.values_list("payout_state", flat=True)) == {"paid"}
    assert JournalEntry.objects.filter(code="payout").count() == 3
    assert BankTransaction.objects.filter(kind="payout").count() == 3
    for merchant in busy_day:
        assert Account.objects.get(pk=merchant.settlement_account_id).balance == 0
    assert ledger_ok(ledger_verify())
