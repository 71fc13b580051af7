"""Incremental verification: a passing check leaves a checkpoint, the next check reads only the
entries after it and still catches what changed since; a full check reads everything."""

import itertools
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command

from core import clock
from escrow import selectors, statements
from escrow.models import Account, JournalEntry, LedgerCheck, LedgerCheckpoint, LedgerCheckpointTotals
from escrow.selectors import ledger_ok, ledger_verify, ledger_verify_for_checkpoint
from escrow.services import (
    ledger_check_nightly,
    ledger_check_run,
    ledger_checkpoint_move,
    ledger_transfer,
)
from tests.escrow.ledger_helpers import checkpoint_totals, funded_card, key, merchant_account, posting_totals
from tests.escrow.test_ledger_verify import _raw

pytestmark = pytest.mark.django_db


def _release(card, merchant, amount=100):
    return ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=amount, idempotency_key=key()
    )


@pytest.fixture
def checkpointed():
    """A card and a merchant with entries, verified and checkpointed; a second card untouched since."""
    card, merchant, idle = funded_card(5_000), merchant_account(), funded_card(700, name="idle")
    _release(card, merchant, 1_200)
    check = ledger_check_run()
    assert check.ok and check.full
    return card, merchant, idle


@pytest.fixture
def rows_read(monkeypatch):
    """How many entries each check read from the journal: the rows walked in Python, or the entries
    PostgreSQL checked (``journal_check_in_database``)."""
    counts: list[int] = []
    rows_of, in_database = statements.journal_rows, statements.journal_check_in_database

    def counting(**kwargs):
        rows = list(rows_of(**kwargs))
        counts.append(len(rows))
        return iter(rows)

    def counting_in_database(**kwargs):
        found = in_database(**kwargs)
        counts.append(found[0])
        return found

    monkeypatch.setattr(statements, "journal_rows", counting)
    monkeypatch.setattr(statements, "journal_check_in_database", counting_in_database)
    return counts


def test_a_passing_check_leaves_a_checkpoint_at_every_chain_head_and_account_total(checkpointed):
    checkpoint = LedgerCheckpoint.objects.get()
    assert checkpoint.entries == JournalEntry.objects.count() == 3
    assert checkpoint_totals() == posting_totals()


def test_the_next_check_reads_only_the_entries_after_the_checkpoint(checkpointed, rows_read):
    card, merchant, _ = checkpointed
    _release(card, merchant)
    incremental = ledger_verify()
    full = ledger_verify(full=True)
    assert rows_read == [1, 4]  # the new entry; then all four entries
    assert ledger_ok(incremental) and not incremental["full"] and full["full"]
    assert {k: v for k, v in incremental.items() if k != "full"} == {k: v for k, v in full.items() if k != "full"}


def test_checkpoint_totals_follow_incremental_checks_and_match_a_full_recount(checkpointed):
    card, merchant, idle = checkpointed
    for _ in range(3):
        _release(card, merchant, 10)
        _release(idle, merchant, 5)
        check = ledger_check_run()
        assert check.ok and not check.full
    assert checkpoint_totals() == posting_totals()
    assert LedgerCheckpoint.objects.get().entries == JournalEntry.objects.count()


def test_an_entry_altered_after_the_checkpoint_is_caught_by_the_incremental_check(checkpointed):
    card, merchant, _ = checkpointed
    entry = _release(card, merchant)
    _raw("UPDATE escrow_journalentry SET memo = 'edited' WHERE id = %s", [entry.id])
    result = ledger_verify()
    assert not result["full"] and not result["chain_ok"]
    assert any(f"entry {entry.id}" in problem for problem in result["problems"])


def test_a_posting_doubled_after_the_checkpoint_unbalances_the_entry_and_its_accounts(checkpointed):
    card, merchant, _ = checkpointed
    entry = _release(card, merchant)
    _raw("UPDATE escrow_posting SET amount = amount * 2 WHERE entry_id = %s AND amount > 0", [entry.id])
    result = ledger_verify()
    assert not result["balanced"] and not result["chain_ok"] and not result["accounts_match"]


def test_an_entry_slipped_in_after_the_checkpoint_without_its_chain_head_is_caught(checkpointed):
    card, merchant, _ = checkpointed
    last = JournalEntry.objects.filter(chain=JournalEntry.objects.get(code="release").chain).order_by("-seq").first()
    _raw(
        "INSERT INTO escrow_journalentry (code, idempotency_key, actor_label, memo, created_at, chain, seq, "
        "prev_hash, hash) VALUES ('release', %s, '', '', %s, %s, %s, %s, %s)",
        [key("forged"), clock.now(), last.chain, last.seq + 1, last.hash, "f" * 64],
    )
    forged = JournalEntry.objects.get(chain=last.chain, seq=last.seq + 1)
    _raw(
        "INSERT INTO escrow_posting (entry_id, account_id, amount) VALUES (%s, %s, 50), (%s, %s, -50)",
        [forged.id, card.id, forged.id, merchant.id],
    )
    result = ledger_verify()
    assert not result["full"] and not result["chain_ok"] and not result["accounts_match"]


def test_a_balance_changed_on_an_account_untouched_since_the_checkpoint_is_caught(checkpointed):
    card, merchant, idle = checkpointed
    _release(card, merchant)
    Account.objects.filter(pk=idle.pk).update(balance=9_999)
    result = ledger_verify()
    assert not result["full"] and not result["accounts_match"] and not result["custody_matches"]


def test_an_entry_altered_before_the_checkpoint_is_trusted_by_the_incremental_check_and_caught_by_the_full(
    checkpointed,
):
    """The incremental check trusts what the checkpoint verified (the triggers of migration 0003 keep
    it from changing); only a writer bypassing them can, and the full check finds it."""
    entry = JournalEntry.objects.get(code="release")
    _raw("UPDATE escrow_journalentry SET memo = 'edited' WHERE id = %s", [entry.id])
    assert ledger_ok(ledger_verify())
    full = ledger_verify(full=True)
    assert full["full"] and not full["chain_ok"]


def test_a_failing_check_leaves_the_checkpoint_where_it_was(checkpointed):
    card, merchant, _ = checkpointed
    before = LedgerCheckpoint.objects.get()
    _release(card, merchant)
    Account.objects.filter(pk=card.pk).update(balance=1)
    check = ledger_check_run()
    assert not check.ok
    after = LedgerCheckpoint.objects.get()
    assert (after.ledger_check_id, after.entries) == (before.ledger_check_id, before.entries)


def test_a_check_that_read_an_older_checkpoint_does_not_move_a_newer_one(checkpointed):
    card, merchant, _ = checkpointed
    _release(card, merchant)
    _stale_result, stale = ledger_verify_for_checkpoint()
    newer = ledger_check_run()
    assert LedgerCheckpoint.objects.get().ledger_check_id == newer.id
    older = LedgerCheck.objects.exclude(pk=newer.pk).order_by("-created_at").first()
    assert not ledger_checkpoint_move(check=older, move=stale)
    assert LedgerCheckpoint.objects.get().ledger_check_id == newer.id


def test_a_full_check_sets_the_checkpoint_again_from_genesis(checkpointed):
    card, merchant, _ = checkpointed
    _release(card, merchant)
    LedgerCheckpointTotals.objects.update(totals=bytes(8 * LedgerCheckpointTotals.TOTALS_PER_BLOCK))  # gone wrong
    assert not ledger_ok(ledger_verify())
    check = ledger_check_run(full=True)
    assert check.ok and check.full
    assert ledger_ok(ledger_verify())


def test_the_nightly_check_is_full_every_few_days_and_incremental_between(checkpointed, settings):
    settings.LEDGER_FULL_CHECK_DAYS = 7
    start = clock.now()
    with time_machine.travel(start + timedelta(days=1), tick=False):
        assert not ledger_check_nightly().full
    with time_machine.travel(start + timedelta(days=6, hours=23), tick=False):
        assert not ledger_check_nightly().full
    with time_machine.travel(start + timedelta(days=7, minutes=1), tick=False):
        assert ledger_check_nightly().full
    with time_machine.travel(start + timedelta(days=8), tick=False):
        assert not ledger_check_nightly().full


def test_the_first_nightly_check_is_full():
    funded_card(100)
    assert ledger_check_nightly().full


def test_verify_ledger_full_recomputes_from_genesis(checkpointed, capsys):
    call_command("verify_ledger", "--full")
    out = capsys.readouterr().out
    assert '"full": true' in out and '"chain_ok": true' in out
    call_command("verify_ledger")
    assert '"full": false' in capsys.readouterr().out


def test_chain_slices_cover_every_chain_once():
    for chains, workers in (([], 4), ([0], 4), ([3, 7], 4), (list(range(64)), 4), (list(range(5)), 2)):
        slices = selectors._slices(chains, workers)
        assert slices[0][0] == 0 and slices[-1][1] == 1 << 16
        assert all(hi == lo for (_, hi), (lo, _) in itertools.pairwise(slices))
        assert len(slices) <= workers
        if chains:
            assert sum(lo <= chain < hi for chain in chains for lo, hi in slices) == len(chains)
