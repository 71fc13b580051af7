"""Writes to the escrow ledger (chart, entries and invariants: see ``escrow.models``).

``journal_post`` is the one function that moves money. It runs inside the caller's transaction, so
a card service can lock its card, post, and change the card's state in one commit. ``ledger_post``
and ``ledger_transfer`` wrap it in their own durable transaction for callers that only move money.

The posting path is written in plain SQL on purpose: it is the platform's hottest transaction
(every confirmed service runs it). Its statements live in ``escrow.statements``; both posting
functions run one planner (``_post``).

``journal_post_many`` posts many entries at once (a chunk of a mass refund, a batch of refund
payments): the same entries, keys, chains and hashes as as many ``journal_post`` calls, with the
same handful of statements for the whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum

from core import clock, sql
from core.errors import IdempotencyKeyReused
from core.fields import MAX_FEN
from core.gateways import get_gateway
from escrow import statements
from escrow.chain import entry_hash
from escrow.errors import InsufficientFunds, UnbalancedEntry, UnknownAccount
from escrow.models import (
    Account,
    JournalEntry,
    LedgerCheck,
    LedgerCheckpoint,
    LedgerCheckpointHead,
    LedgerCheckpointTotals,
    Reconciliation,
)

if TYPE_CHECKING:
    from escrow.selectors import CheckpointMove, LedgerVerification

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Leg:
    """One posting to be made: ``amount`` fen, positive to debit ``account_id``, negative to credit."""

    account_id: int
    amount: int


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One entry for ``journal_post_many``: what ``journal_post`` takes as arguments."""

    code: str
    legs: Sequence[Leg]
    idempotency_key: str
    actor_id: int | None = None
    actor_label: str = ""
    memo: str = ""


def account_open(*, kind: str, name: str) -> Account:
    """Open an account with a zero balance: a card's escrow, a merchant's settlement, custody or
    refunds payable (the city-wide ones are opened by migration, ``city_wide_account``)."""
    account = Account(kind=kind, name=name[:200], created_at=clock.now())
    sql.insert(account)  # every purchase opens one: the plain INSERT of ``create()``
    return account


CITY_WIDE_NAMES: dict[str, str] = {
    Account.Kind.CUSTODY: "Custody bank account",
    Account.Kind.REFUND_PAYABLE: "Refunds payable to consumers",
}


def city_wide_account(kind: str) -> Account:
    """The city-wide custody or refunds-payable account (migrations 0002 and 0012 open them;
    opened here if missing): what a merchant without accounts of its own posts to."""
    account, _ = Account.objects.get_or_create(
        kind=kind, city_wide=True, defaults={"name": CITY_WIDE_NAMES[kind], "created_at": clock.now()}
    )
    return account


def city_wide_account_id(kind: str) -> int:
    """The city-wide custody or refunds-payable account's id: one indexed read, without compiling
    a query.

    Not cached in the process: looked up by its kind each time, so a test database that was
    flushed and given new city-wide accounts is always seen as it is."""
    found = statements.city_wide_account_id(kind)
    return found if found is not None else city_wide_account(kind).id


_CODES = frozenset(JournalEntry.Code.values)


def _check_entry(code: str, idempotency_key: str, legs: Sequence[Leg]) -> None:
    if code not in _CODES:
        raise UnbalancedEntry(f"unknown entry code {code!r}")
    if not 1 <= len(idempotency_key) <= 255:
        raise UnbalancedEntry("idempotency key must be 1-255 characters")
    _check_legs(legs)


def _check_legs(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise UnbalancedEntry("an entry needs at least two postings")
    if len({leg.account_id for leg in legs}) != len(legs):
        raise UnbalancedEntry("an entry posts to each account once")
    for leg in legs:
        if type(leg.amount) is not int or leg.amount == 0 or abs(leg.amount) > MAX_FEN:
            raise UnbalancedEntry(f"posting amount must be a non-zero integer of fen, got {leg.amount!r}")
    if sum(leg.amount for leg in legs) != 0:
        raise UnbalancedEntry("postings must sum to zero")


def _existing_entries(entries: Sequence[NewEntry], existing: dict[str, int]) -> dict[str, JournalEntry]:
    """The entries already posted under keys of ``entries``, checked to carry the same postings
    (the same key with other postings is a conflict)."""
    stored = statements.postings_of(list(existing.values()))
    for new in entries:
        entry_id = existing.get(new.idempotency_key)
        if entry_id is not None and sorted(stored.get(entry_id, [])) != sorted(
            (leg.account_id, leg.amount) for leg in new.legs
        ):
            raise IdempotencyKeyReused()
    replayed = {entry.idempotency_key: entry for entry in JournalEntry.objects.filter(pk__in=existing.values())}
    for entry in replayed.values():
        entry.replayed = True
    return replayed


# The sign of a posting on each kind of account, from ``Account.side``: a debit raises a
# debit-side account (custody) and lowers every credit-side one.
_SIDE = {kind: Account(kind=kind).side for kind in Account.Kind.values}


def _post(entries: Sequence[NewEntry], *, need_id: bool = True) -> list[JournalEntry]:
    """The one planner of ``journal_post`` and ``journal_post_many``: check, lock the accounts in
    primary-key order, find the keys already posted, sign by side and check each balance in
    order, add the balances, lock the chain heads in chain order, hash and write the entries,
    move the heads. On PostgreSQL inside ``core.sql.writes_ahead``: writes travel in front of
    the next read."""
    if not connection.in_atomic_block:
        raise RuntimeError("posting to the journal must run inside transaction.atomic()")
    for new in entries:
        _check_entry(new.code, new.idempotency_key, new.legs)
    keys = [new.idempotency_key for new in entries]
    if len(set(keys)) != len(keys):
        raise UnbalancedEntry("an idempotency key appears twice in one batch")
    account_ids = sorted({leg.account_id for new in entries for leg in new.legs})
    one = len(entries) == 1
    with sql.writes_ahead():
        if one:  # the key looked up in the lock's own round trip
            locked = statements.accounts_lock(account_ids, idempotency_key=keys[0])
            existing = {keys[0]: locked[0][3]} if locked and locked[0][3] is not None else {}
            if existing:
                return [_existing_entries(entries, existing)[keys[0]]]
        else:
            locked = statements.accounts_lock(account_ids)
        if len(locked) != len(account_ids):
            raise UnknownAccount()
        if not one:
            # Read after the lock: an entry of one of these keys committed while we waited is seen here.
            existing = statements.entry_ids_by_key(keys)
        replayed = _existing_entries(entries, existing) if existing else {}
        fresh = [new for new in entries if new.idempotency_key not in existing]

        side = {account_id: _SIDE[kind] for account_id, kind, _, _ in locked}
        balance = {account_id: amount for account_id, _, amount, _ in locked}
        delta = dict.fromkeys(account_ids, 0)
        after: list[dict[int, int]] = []
        for new in fresh:
            balances = {}
            for leg in new.legs:
                signed = leg.amount * side[leg.account_id]
                balance[leg.account_id] += signed
                delta[leg.account_id] += signed
                if balance[leg.account_id] < 0:
                    raise InsufficientFunds()
                balances[leg.account_id] = balance[leg.account_id]
            after.append(balances)
        delta = {account_id: amount for account_id, amount in delta.items() if amount}
        if delta:
            sql.execute_all([statements.balances_add(delta)])
        kinds = {account_id: kind for account_id, kind, _, _ in locked}
        posted = _entries_write(fresh, need_id=need_id, kinds=kinds) if fresh else []

    for entry, balances in zip(posted, after, strict=True):
        entry.balances = balances  # each account's balance after this entry, read under its lock
    by_key = {entry.idempotency_key: entry for entry in posted} | replayed
    return [by_key[key] for key in keys]


# Entries whose credits to a merchant settlement account are what a day's settlement pays out, and
# the column of ``SettlementDayTotal`` each adds to.
_SETTLED_CODES: dict[str, int] = {JournalEntry.Code.RELEASE: 0, JournalEntry.Code.FEE: 1}


def _settlement_days(
    entries: Sequence[NewEntry], kinds: dict[int, str], created_at: datetime
) -> dict[tuple[int, date], tuple[int, int, int]]:
    """What ``entries`` add to their merchant settlement accounts' ``SettlementDayTotal`` of
    ``created_at``'s business day: ``(account, day) → (released, fees, releases_count)``, each
    posting counted as ``merchants.services.settlement`` sums the day (a credit is negative)."""
    day = clock.business_day(created_at)
    totals: dict[tuple[int, date], list[int]] = {}
    for new in entries:
        column = _SETTLED_CODES.get(new.code)
        if column is None:
            continue
        for leg in new.legs:
            if kinds[leg.account_id] == Account.Kind.MERCHANT_SETTLEMENT:
                row = totals.setdefault((leg.account_id, day), [0, 0, 0])
                row[column] -= leg.amount
                row[2] += column == 0
    return {key: (released, fees, count) for key, (released, fees, count) in totals.items()}


def _entries_write(entries: Sequence[NewEntry], *, need_id: bool, kinds: dict[int, str]) -> list[JournalEntry]:
    """Write new entries on their chains (a card's entries share the chain of its first leg), and
    add their releases and fees to the day totals of their merchant settlement accounts (``kinds``:
    each account's kind), whose rows only this transaction can touch: it holds the accounts."""
    stripes = settings.LEDGER_CHAIN_STRIPES
    heads = statements.chain_heads_lock(sorted({new.legs[0].account_id % stripes for new in entries}))
    created_at = clock.now()  # after the chain's lock: a chain's entries are stamped in their order
    days = _settlement_days(entries, kinds, created_at)
    if days:  # travels with the entry's write, in its round trip
        sql.execute_all([statements.settlement_days_add(days)])
    posted: list[JournalEntry] = []
    alias = connection.alias
    for new in entries:
        chain = new.legs[0].account_id % stripes
        prev_seq, prev_hash = heads[chain]
        postings = [(leg.account_id, leg.amount) for leg in new.legs]
        link = entry_hash(
            chain=chain,
            seq=prev_seq + 1,
            prev_hash=prev_hash,
            code=new.code,
            idempotency_key=new.idempotency_key,
            actor_id=new.actor_id,
            actor_label=new.actor_label,
            memo=new.memo,
            created_at=created_at,
            postings=postings,
        )
        heads[chain] = (prev_seq + 1, link)
        posted.append(
            _posted(
                alias,
                code=new.code,
                idempotency_key=new.idempotency_key,
                actor_id=new.actor_id,
                actor_label=new.actor_label,
                memo=new.memo,
                created_at=created_at,
                chain=chain,
                seq=prev_seq + 1,
                prev_hash=prev_hash,
                hash=link,
            )
        )
    move_heads = statements.chain_heads_move(heads)
    if len(posted) == 1 and connection.vendor == "postgresql":
        # The chain head, the entry and its postings in one round trip.
        write = statements.entry_write(posted[0], [(leg.account_id, leg.amount) for leg in entries[0].legs])
        if need_id:
            sql.execute_all([move_heads])  # goes in front of the entry's INSERT
            posted[0].id = sql.fetch(*write)[0][0]
        else:
            sql.execute_all([move_heads, write])
        return posted
    statements.entries_insert(posted, [[(leg.account_id, leg.amount) for leg in new.legs] for new in entries])
    sql.execute_all([move_heads])
    return posted


def journal_post(
    *,
    code: str,
    legs: Sequence[Leg],
    idempotency_key: str,
    actor_id: int | None = None,
    actor_label: str = "",
    memo: str = "",
    need_id: bool = True,
) -> JournalEntry:
    """Post one balanced entry in the caller's transaction and return it.

    Posting under an ``idempotency_key`` that was already posted returns that entry and moves
    nothing (its ``replayed`` is True). Raises ``InsufficientFunds`` if any account would fall
    below zero. A newly posted entry carries ``balances``: each account's balance after it.

    On PostgreSQL the post takes three round trips, each statement prepared once per session
    (``core.sql``): lock the accounts (and look up the key), add the balances and lock the chain
    head, then move the head and write the entry with its postings. A caller that does not need
    the new entry's ``id`` (``need_id=False``; the entry's ``id`` is then None) lets that last
    write wait and travel with its transaction's next statement (``core.sql.writes_ahead``); a
    failure of it (the key posted by a racing transaction) then surfaces there, so such a caller
    must hold a lock that keeps the same key from being posted concurrently.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("journal_post must run inside transaction.atomic()")
    new = NewEntry(code, legs, idempotency_key, actor_id, actor_label, memo)
    return _post([new], need_id=need_id)[0]


def _posted(alias: str, **fields) -> JournalEntry:
    """The ``JournalEntry`` object of a row written in plain SQL on the connection ``alias`` (its
    ``id`` set once known)."""
    entry = JournalEntry(**fields)
    entry._state.adding = False
    entry._state.db = alias
    entry.replayed = False
    return entry


def journal_post_many(entries: Sequence[NewEntry]) -> list[JournalEntry]:
    """Post many balanced entries in the caller's transaction, each exactly as ``journal_post``
    would post it (its own key, chain position and hash), and return them in order.

    Every account of the batch is locked in one statement, in primary-key order, before any chain
    head, as a single posting locks its own; the chain heads are then locked in chain order. An
    entry already posted under its key is returned replayed and moves nothing (the same key with
    other postings is ``IdempotencyKeyReused``). Raises ``InsufficientFunds`` if any account would
    fall below zero at any entry of the batch, taken in order; nothing is written then."""
    if not connection.in_atomic_block:
        raise RuntimeError("journal_post_many must run inside transaction.atomic()")
    if not entries:
        return []
    return _post(entries)


def ledger_post(
    *,
    code: str,
    legs: Sequence[Leg],
    idempotency_key: str,
    actor_id: int | None = None,
    actor_label: str = "",
    memo: str = "",
) -> JournalEntry:
    """Post one entry in its own durable transaction; idempotent on ``idempotency_key``."""
    for attempt in range(2):
        try:
            with transaction.atomic(durable=True):
                return journal_post(
                    code=code,
                    legs=legs,
                    idempotency_key=idempotency_key,
                    actor_id=actor_id,
                    actor_label=actor_label,
                    memo=memo,
                )
        except IntegrityError:
            # A post of the same key committed while we waited for the lock: the retry finds it.
            if attempt:
                raise
    raise AssertionError("unreachable")


def ledger_transfer(
    *,
    code: str,
    debit_account_id: int,
    credit_account_id: int,
    amount: int,
    idempotency_key: str,
    actor_id: int | None = None,
    actor_label: str = "",
    memo: str = "",
) -> JournalEntry:
    """Move ``amount`` fen "debit → credit" (see the table of entry codes in ``escrow.models``)."""
    if type(amount) is not int or amount <= 0:
        raise UnbalancedEntry(f"a transfer moves a positive integer of fen, got {amount!r}")
    return ledger_post(
        code=code,
        legs=[Leg(debit_account_id, amount), Leg(credit_account_id, -amount)],
        idempotency_key=idempotency_key,
        actor_id=actor_id,
        actor_label=actor_label,
        memo=memo,
    )


def reconciliation_run() -> Reconciliation:
    """Compare custody in the ledger (every custody account: the city-wide one and each
    merchant's) with the gateway's own record, and keep the result."""
    gateway = get_gateway()
    external = gateway.custody_balance()
    custody = Account.objects.filter(kind=Account.Kind.CUSTODY).aggregate(total=Sum("balance"))["total"] or 0
    reconciliation = Reconciliation.objects.create(
        gateway=gateway.name,
        ledger_custody=custody,
        gateway_balance=external,
        difference=external - custody,
        created_at=clock.now(),
    )
    if reconciliation.difference:
        log.error(
            "reconciliation: %s holds %s fen, the ledger's custody %s (difference %s)",
            gateway.name, external, custody, reconciliation.difference,
        )  # fmt: skip
    return reconciliation


LEDGER_CHECK_PROBLEMS_KEPT = 100


def ledger_check_run(*, full: bool = False) -> LedgerCheck:
    """Verify the ledger now and keep the result (the nightly job, and "verify now"): from the
    checkpoint, or from genesis with ``full``."""
    return ledger_check_verify_and_keep(full=full)[0]


def ledger_check_nightly() -> LedgerCheck:
    """The nightly check: from the checkpoint, and from genesis when the newest full check is
    ``LEDGER_FULL_CHECK_DAYS`` old or more (or there is none)."""
    latest = LedgerCheck.objects.filter(full=True).order_by("-created_at").values_list("created_at", flat=True)
    since = latest.first()
    due = since is None or clock.now() - since >= timedelta(days=settings.LEDGER_FULL_CHECK_DAYS)
    return ledger_check_run(full=due)


def ledger_check_verify_and_keep(*, full: bool = False) -> tuple[LedgerCheck, LedgerVerification]:
    """Verify the ledger now, keep the result and return it with the full verification (every
    problem, not only the kept ones): every source of a check (the regulator's "verify now", the
    nightly job, ``manage.py verify_ledger``) keeps it, so the ledger page shows the newest of any.
    A check that passes moves the checkpoint (``ledger_checkpoint_move``)."""
    import time

    from escrow.selectors import ledger_ok, ledger_verify_for_checkpoint

    started = time.monotonic()
    result, move = ledger_verify_for_checkpoint(full=full)
    check = LedgerCheck.objects.create(
        balanced=result["balanced"],
        chain_ok=result["chain_ok"],
        custody_matches=result["custody_matches"],
        accounts_match=result["accounts_match"],
        entries=result["entries"],
        head_hash=result["head_hash"],
        problems=result["problems"][:LEDGER_CHECK_PROBLEMS_KEPT],
        problems_total=len(result["problems"]),
        milliseconds=round((time.monotonic() - started) * 1000),
        created_at=clock.now(),
        full=result["full"],
    )
    if ledger_ok(result):
        ledger_checkpoint_move(check=check, move=move)
    return check, result


def ledger_checkpoint_move(*, check: LedgerCheck, move: CheckpointMove) -> bool:
    """Make what ``check`` verified the checkpoint: its chain heads, and the totals of the accounts
    it saw postings for (upserted; a full check replaces every total and head). An incremental
    check is refused (False) when another check moved the checkpoint since it read it: its totals
    only add to the checkpoint it started from. The checkpoint row is locked first."""
    with transaction.atomic():
        current = LedgerCheckpoint.objects.select_for_update().filter(pk=1).first()
        if not move.full and (current is None or current.ledger_check_id != move.base_check_id):
            return False
        full_check_at = check.created_at if move.full else current.full_check_at  # type: ignore[union-attr]
        if move.full:  # self-contained: whatever another check left, this one replaces all of it
            LedgerCheckpointTotals.objects.all().delete()
            LedgerCheckpointHead.objects.all().delete()
        LedgerCheckpointHead.objects.bulk_create(
            [LedgerCheckpointHead(chain=chain, seq=seq, hash=link) for chain, (seq, link) in move.heads.items()],
            update_conflicts=True,
            unique_fields=["chain"],
            update_fields=["seq", "hash"],
            batch_size=1000,
        )
        statements.checkpoint_totals_set(totals=move.totals)
        LedgerCheckpoint.objects.update_or_create(
            pk=1,
            defaults={
                "ledger_check": check,
                "entries": move.entries,
                "full_check_at": full_check_at,
                "created_at": check.created_at,
            },
        )
    return True
