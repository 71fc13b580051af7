"""verify_ledger catches tampering even when the database's own guards are bypassed."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from escrow.services import ledger_transfer
from tests.escrow.ledger_helpers import funded_card, key, merchant_account

pytestmark = pytest.mark.django_db


def _raw(sql, params=()):
    """Write behind the services' back, as an intruder with database access would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Run the checks already queued for this transaction's honest writes, then skip the
            # append-only and balance triggers for the tampering itself.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)


@pytest.fixture
def ledger():
    card, merchant = funded_card(5_000), merchant_account()
    ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=1_200, idempotency_key=key()
    )
    assert ledger_ok(ledger_verify())
    return card, merchant


def test_verify_reports_counts_and_a_stable_head_hash(ledger):
    first, second = ledger_verify(), ledger_verify()
    assert first["entries"] == 2
    assert first["head_hash"] == second["head_hash"] and len(first["head_hash"]) == 64


def test_head_hash_changes_with_every_new_entry(ledger):
    card, merchant = ledger
    before = ledger_verify()["head_hash"]
    ledger_transfer(
        code="release", debit_account_id=card.id, credit_account_id=merchant.id, amount=1, idempotency_key=key()
    )
    assert ledger_verify()["head_hash"] != before


def test_rewritten_posting_amount_breaks_balance_and_chain(ledger):
    entry = JournalEntry.objects.get(code="release")
    _raw("UPDATE escrow_posting SET amount = amount * 2 WHERE entry_id = %s AND amount > 0", [entry.id])
    result = ledger_verify()
    assert not result["balanced"] and not result["chain_ok"]


def test_rewritten_memo_breaks_the_chain(ledger):
    entry = JournalEntry.objects.get(code="release")
    _raw("UPDATE escrow_journalentry SET memo = 'edited' WHERE id = %s", [entry.id])
    result = ledger_verify()
    assert result["balanced"] and not result["chain_ok"]


def test_deleted_entry_breaks_the_chain(ledger):
    entry = JournalEntry.objects.get(code="purchase")
    _raw("DELETE FROM escrow_posting WHERE entry_id = %s", [entry.id])
    _raw("DELETE FROM escrow_journalentry WHERE id = %s", [entry.id])
    assert not ledger_verify()["chain_ok"]


def test_balance_edited_without_a_posting_breaks_account_match_and_custody(ledger):
    card, _ = ledger
    Account.objects.filter(pk=card.pk).update(balance=9_999)
    result = ledger_verify()
    assert not result["accounts_match"] and not result["custody_matches"]


def test_verify_ledger_command_exits_zero_when_sound(ledger, capsys):
    call_command("verify_ledger")
    assert '"chain_ok": true' in capsys.readouterr().out


def test_verify_ledger_command_exits_one_on_failure(ledger):
    card, _ = ledger
    Account.objects.filter(pk=card.pk).update(balance=1)
    with pytest.raises(CommandError) as excinfo:
        call_command("verify_ledger")
    assert excinfo.value.returncode == 1
