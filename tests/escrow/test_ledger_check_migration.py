"""Migration 0008 keeps a ledger check's duration: float seconds become whole milliseconds, and back."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core import clock
from escrow.services import ledger_check_run

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("escrow", "0007_ledger_check")]
AFTER = [("escrow", "0008_ledgercheck_milliseconds")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def test_a_checks_seconds_become_whole_milliseconds_and_back():
    try:
        old = migrate(BEFORE).get_model("escrow", "LedgerCheck")
        fields = dict(balanced=True, chain_ok=True, custody_matches=True, accounts_match=True, entries=0)
        kept = old.objects.create(**fields, head_hash="0" * 64, seconds=2.5004, created_at=clock.now())

        new = migrate(AFTER).get_model("escrow", "LedgerCheck")
        assert new.objects.get(pk=kept.pk).milliseconds == 2_500

        old = migrate(BEFORE).get_model("escrow", "LedgerCheck")
        assert old.objects.get(pk=kept.pk).seconds == 2.5
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_a_ledger_check_keeps_its_duration_in_whole_milliseconds():
    check = ledger_check_run()
    check.refresh_from_db()
    assert type(check.milliseconds) is int and check.milliseconds >= 0


def test_the_checkpoint_totals_move_into_packed_blocks_and_back():
    """Migration 0015: each account's checkpoint row becomes its slot in a block of 1,024, and back."""
    from escrow import statements
    from escrow.models import LedgerCheckpointTotals
    from tests.escrow.ledger_helpers import checkpoint_totals

    slots = LedgerCheckpointTotals.TOTALS_PER_BLOCK
    try:
        apps = migrate([("escrow", "0014_checkpoint_sum_fillfactor")])
        account, rows = apps.get_model("escrow", "Account"), apps.get_model("escrow", "LedgerCheckpointSum")
        opened = [account.objects.create(kind="card_escrow", name=f"a{i}", created_at=clock.now()) for i in range(3)]
        ids = [a.pk for a in opened]
        wanted = {ids[0]: 5_000, ids[1]: -(2**62), ids[2]: 0}  # 0: a total like no row at all
        rows.objects.bulk_create([rows(account_id=pk, total=total) for pk, total in wanted.items()])

        migrate([("escrow", "0015_checkpoint_totals_packed")])
        assert set(statements.checkpoint_totals()) == {pk // slots for pk in ids}
        assert checkpoint_totals() == {pk: total for pk, total in wanted.items() if total}

        apps = migrate([("escrow", "0014_checkpoint_sum_fillfactor")])
        back = apps.get_model("escrow", "LedgerCheckpointSum").objects.values_list("account_id", "total")
        assert dict(back) == {pk: total for pk, total in wanted.items() if total}
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
