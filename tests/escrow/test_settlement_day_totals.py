"""The ledger keeps each merchant settlement account's day totals as releases and fees post
(``SettlementDayTotal``), and they always equal the day's postings: what a settlement pays is
exactly what the ledger released that day."""

import contextlib
from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import clock
from escrow.errors import InsufficientFunds
from escrow.models import Account, SettlementDayTotal
from escrow.selectors import (
    settlement_day_mismatches,
    settlement_day_totals,
    settlement_day_totals_from_postings,
)
from escrow.services import Leg, NewEntry, journal_post_many, ledger_transfer
from tests.escrow.ledger_helpers import custody, funded_card, key, merchant_account

FIRST_DAY = date(2026, 3, 2)
MICROSECOND = timedelta(microseconds=1)


def moment(day_index: int, offset_us: int):
    """An instant ``offset_us`` microseconds after midnight of the ``day_index``-th day."""
    return clock.local_midnight(FIRST_DAY + timedelta(days=day_index)) + offset_us * MICROSECOND


# Instants at and around midnight (the day's window is (midnight, next midnight]), and anywhere.
ON_THE_EDGE = st.sampled_from([-1, 0, 1])
ANYWHERE = st.integers(min_value=0, max_value=86_400 * 10**6 - 1)
instants = st.tuples(st.integers(min_value=0, max_value=2), st.one_of(ON_THE_EDGE, ANYWHERE))
movements = st.lists(
    st.tuples(
        st.sampled_from(["release", "fee", "payout", "batch"]),
        st.integers(min_value=0, max_value=2),  # which merchant
        st.integers(min_value=1, max_value=5_000),  # fen
        instants,
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.django_db
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=movements)
def test_day_totals_equal_the_days_release_and_fee_postings_for_any_sequence(steps):
    card = funded_card(10_000_000)
    merchants = [merchant_account() for _ in range(3)]
    expected: dict[tuple[int, date], list[int]] = {}
    days = set()

    def expect(account: Account, at, released: int = 0, fee: int = 0) -> None:
        row = expected.setdefault((account.pk, clock.business_day(at)), [0, 0, 0])
        row[0] += released
        row[1] += fee
        row[2] += 1 if released else 0

    for kind, which, amount, (day_index, offset) in steps:
        at = moment(day_index, offset)
        days.add(clock.business_day(at))
        merchant = merchants[which]
        with time_machine.travel(at, tick=False):
            if kind in ("release", "fee"):
                ledger_transfer(
                    code=kind,
                    debit_account_id=card.pk,
                    credit_account_id=merchant.pk,
                    amount=amount,
                    idempotency_key=key(kind),
                )
                expect(merchant, at, **({"released": amount} if kind == "release" else {"fee": amount}))
            elif kind == "payout":  # a debit of the account: not a release, never in the totals
                with contextlib.suppress(InsufficientFunds):
                    ledger_transfer(
                        code="payout",
                        debit_account_id=merchant.pk,
                        credit_account_id=custody().pk,
                        amount=amount,
                        idempotency_key=key("payout"),
                    )
            else:  # several releases to one merchant and a fee in one batch, one of them replayed
                keys = [key("release"), key("release")]
                batch = [
                    NewEntry("release", [Leg(card.pk, amount), Leg(merchant.pk, -amount)], keys[0]),
                    NewEntry("release", [Leg(card.pk, amount + 1), Leg(merchant.pk, -(amount + 1))], keys[1]),
                    NewEntry("fee", [Leg(card.pk, 7), Leg(merchants[(which + 1) % 3].pk, -7)], key("fee")),
                ]
                with transaction.atomic():
                    journal_post_many(batch)
                with transaction.atomic():
                    assert all(entry.replayed for entry in journal_post_many(batch[:2]))  # moves nothing
                expect(merchant, at, released=amount)
                expect(merchant, at, released=amount + 1)
                expect(merchants[(which + 1) % 3], at, fee=7)

    ours = {merchant.pk for merchant in merchants}
    kept = {
        (row.account_id, row.day): [row.released, row.fees, row.releases_count]
        for row in SettlementDayTotal.objects.filter(account_id__in=ours)
    }
    assert kept == expected
    for day in days:
        assert settlement_day_mismatches(day=day) == []
        assert {a: t for a, t in settlement_day_totals(day=day).items() if a in ours} == {
            a: t for a, t in settlement_day_totals_from_postings(day=day).items() if a in ours
        }


@pytest.mark.django_db
def test_a_release_at_midnight_exactly_belongs_to_the_day_it_closes():
    card, merchant = funded_card(1_000), merchant_account()
    for at, amount in ((moment(1, 0), 100), (moment(1, 1), 10)):
        with time_machine.travel(at, tick=False):
            ledger_transfer(
                code="release",
                debit_account_id=card.pk,
                credit_account_id=merchant.pk,
                amount=amount,
                idempotency_key=key("release"),
            )
    assert settlement_day_totals(day=FIRST_DAY)[merchant.pk] == (100, 0, 1)
    assert settlement_day_totals(day=FIRST_DAY + timedelta(days=1))[merchant.pk] == (10, 0, 1)


@pytest.mark.django_db
def test_a_total_that_differs_from_the_postings_is_reported():
    card, merchant = funded_card(1_000), merchant_account()
    with time_machine.travel(moment(0, 3_600 * 10**6), tick=False):
        ledger_transfer(
            code="release",
            debit_account_id=card.pk,
            credit_account_id=merchant.pk,
            amount=300,
            idempotency_key=key("release"),
        )
    assert settlement_day_mismatches(day=FIRST_DAY) == []
    SettlementDayTotal.objects.filter(account_id=merchant.pk).update(released=299)  # a bug, or a hand
    assert settlement_day_mismatches(day=FIRST_DAY) == [(merchant.pk, (299, 0, 1), (300, 0, 1))]


BEFORE = [("escrow", "0012_account_city_wide")]
AFTER = [("escrow", "0013_settlement_day_total")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_the_migration_builds_the_day_totals_of_the_postings_before_it():
    try:
        apps = migrate(BEFORE)
        account, entry, posting = (apps.get_model("escrow", name) for name in ("Account", "JournalEntry", "Posting"))
        opened = clock.now()
        card = account.objects.create(kind="card_escrow", name="card", balance=0, created_at=opened)
        shop = account.objects.create(kind="merchant_settlement", name="shop", balance=0, created_at=opened)
        bank = account.objects.create(kind="custody", name="bank", balance=0, created_at=opened)
        moves = [
            ("purchase", moment(0, 1), bank, card, 10_000),
            ("release", moment(0, 5), card, shop, 100),
            ("release", moment(1, 0), card, shop, 200),  # midnight: the first day's
            ("fee", moment(1, 1), card, shop, 30),
            ("release", moment(1, 2), card, shop, 400),
            ("payout", moment(1, 3), shop, bank, 100),
        ]
        with transaction.atomic():
            for seq, (code, at, debit, credit, amount) in enumerate(moves, start=1):
                made = entry.objects.create(
                    code=code, idempotency_key=f"m-{seq}", created_at=at, chain=999, seq=seq, prev_hash="0", hash="0"
                )
                posting.objects.create(entry=made, account=debit, amount=amount)
                posting.objects.create(entry=made, account=credit, amount=-amount)

        apps = migrate(AFTER)
        rows = apps.get_model("escrow", "SettlementDayTotal").objects.filter(account_id=shop.pk)
        assert {(row.day, row.released, row.fees, row.releases_count) for row in rows} == {
            (FIRST_DAY, 300, 0, 2),
            (FIRST_DAY + timedelta(days=1), 400, 30, 1),
        }
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db
def test_the_check_command_passes_a_reconciled_day_and_fails_a_differing_one(capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    card, merchant = funded_card(1_000), merchant_account()
    with time_machine.travel(moment(0, 60 * 10**6), tick=False):
        ledger_transfer(
            code="release",
            debit_account_id=card.pk,
            credit_account_id=merchant.pk,
            amount=250,
            idempotency_key=key("release"),
        )
    call_command("settlement_days_check", "--date", FIRST_DAY.isoformat())
    assert "equal the postings" in capsys.readouterr().out
    SettlementDayTotal.objects.filter(account_id=merchant.pk).update(releases_count=2)
    with pytest.raises(CommandError, match="1 accounts"):
        call_command("settlement_days_check", "--date", FIRST_DAY.isoformat())
