"""A full check on PostgreSQL reads slices of the chains in threads of their own, in one exported
snapshot, and finds what the one-connection check finds."""

import time

import pytest
from django.db import connection, transaction

from escrow.models import JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from escrow.services import ledger_check_run
from tests.escrow.ledger_helpers import cards_released_to_one_merchant
from tests.escrow.test_ledger_verify import _raw

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def many_chains():
    cards_released_to_one_merchant(12)
    assert JournalEntry.objects.values("chain").distinct().count() > 4


def test_a_parallel_full_check_agrees_with_a_one_connection_check(many_chains):
    parallel, single = ledger_verify(full=True, workers=4), ledger_verify(full=True, workers=1)
    assert ledger_ok(parallel) and parallel == single and parallel["entries"] == 24


def test_a_parallel_full_check_finds_an_entry_altered_in_any_slice(many_chains):
    ledger_check_run()
    chains = sorted(set(JournalEntry.objects.values_list("chain", flat=True)))
    entry = JournalEntry.objects.filter(chain=chains[-1]).first()
    with transaction.atomic():
        _raw("UPDATE escrow_journalentry SET memo = 'edited' WHERE id = %s", [entry.id])
    assert ledger_ok(ledger_verify())  # before the checkpoint: trusted
    result = ledger_verify(full=True, workers=4)
    assert not result["chain_ok"] and any(f"entry {entry.id} " in problem for problem in result["problems"])


def _sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_the_threads_leave_no_connection_behind(many_chains):
    before = _sessions()
    ledger_verify(full=True, workers=4)
    deadline = time.monotonic() + 5  # a closed session's backend takes a moment to leave the view
    while _sessions() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sessions() == before
