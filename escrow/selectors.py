"""Reads of the escrow ledger: balances, an account's entries, and the regulator's verification.

Verification is incremental. A check that passes leaves a checkpoint (``escrow.models.LedgerCheckpoint``):
each chain's verified head and each account's posting total up to it. The next check reads only the
entries after each chain's checkpointed head — an index range per chain — so its cost follows the
entries posted since, not the journal's history:

- every new entry links to its chain's previous hash and its hash matches its content;
- every new entry has two or more postings summing to zero;
- every account's balance equals its checkpoint total plus its new postings (one pass over the
  accounts, which custody = liabilities reads anyway);
- custody equals everything owed.

The incremental check trusts the rows before the checkpoint: they were verified when it was set,
and PostgreSQL's triggers (migration ``escrow/0003``) refuse UPDATE and DELETE of entries and
postings since. Only someone who bypasses the triggers can change them, and a full check
(``ledger_verify(full=True)``, ``manage.py verify_ledger --full``, the nightly job every
``LEDGER_FULL_CHECK_DAYS``) recomputes everything from genesis and finds it.

On PostgreSQL the database does the walk (``_Walk.run_in_database``): it recomputes each entry's
hash from its content (the canonical JSON of ``escrow.chain``, written in SQL), follows the links
and sums the postings, and sends back only the problems, each chain's ends and the account totals,
never the journal itself. Checks, full and incremental, run slices of the chains on connections of
their own, in threads that wait while PostgreSQL works, all reading one exported snapshot: the
walk uses every core the database has. Elsewhere (SQLite) Python walks the rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypedDict, TypeVar

from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, Count, F, Q, Sum, Value, When

from core import clock, sql
from escrow import statements
from escrow.chain import GENESIS_HASH, entry_hash, heads_hash
from escrow.models import (
    Account,
    ChainHead,
    JournalEntry,
    LedgerCheckpoint,
    LedgerCheckpointHead,
    LedgerCheckpointTotals,
    Posting,
    SettlementDayTotal,
)

# What the custody bank must hold: everything the platform owes.
LIABILITY_KINDS = (Account.Kind.CARD_ESCROW, Account.Kind.MERCHANT_SETTLEMENT, Account.Kind.REFUND_PAYABLE)
T = TypeVar("T")
# Threads of a full check on PostgreSQL (each one connection reading a slice of the chains).
FULL_CHECK_WORKERS = 4


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """One journal entry as an account's statement shows it."""

    entry_id: int
    code: str
    idempotency_key: str
    memo: str
    created_at: datetime
    hash: str
    amount: int  # the entry's posting on the account, signed as posted (+ debit, - credit); 0: none
    moved: int  # the money the entry moved: the sum of its debits


def account_entries(*, account_id: int, entry_keys: Sequence[str] = ()) -> list[AccountEntry]:
    """Every journal entry that posted to ``account_id`` (a card's escrow: its purchase, releases,
    fee and refund), with the entries ``entry_keys`` name that did not (a refund's payment out of
    refunds payable), oldest first. Three indexed reads: the account's postings by the
    ``(account, entry)`` index, the named entries by their unique key, then the entries by id."""
    posted = dict(Posting.objects.filter(account_id=account_id).values_list("entry_id", "amount"))
    ids = set(posted)
    if entry_keys:
        ids |= set(JournalEntry.objects.filter(idempotency_key__in=list(entry_keys)).values_list("pk", flat=True))
    if not ids:
        return []
    rows = (
        JournalEntry.objects.filter(pk__in=ids)
        .annotate(moved=Sum("postings__amount", filter=Q(postings__amount__gt=0)))
        .order_by("created_at", "pk")
        .values_list("pk", "code", "idempotency_key", "memo", "created_at", "hash", "moved")
    )
    return [
        AccountEntry(
            entry_id=pk,
            code=code,
            idempotency_key=key,
            memo=memo,
            created_at=created_at,
            hash=link,
            amount=posted.get(pk, 0),
            moved=moved or 0,
        )
        for pk, code, key, memo, created_at, link, moved in rows
    ]


class LedgerVerification(TypedDict):
    balanced: bool
    chain_ok: bool
    custody_matches: bool
    accounts_match: bool
    entries: int
    head_hash: str
    problems: list[str]
    full: bool  # recomputed from genesis; otherwise from the checkpoint


@dataclass
class CheckpointMove:
    """What a passing check verified, for ``escrow.services`` to keep as the new checkpoint."""

    base_check_id: int | None  # the checkpoint the check started from (None: from genesis)
    full: bool
    entries: int
    heads: dict[int, tuple[int, str]]  # chain → verified (seq, hash)
    totals: dict[int, int]  # account → posting total, for the accounts with postings in this check


def _not_following(chain: int, entry_id: int, seq: int, expected_seq: int) -> str:
    return f"chain {chain}: entry {entry_id} (seq {seq}) does not follow seq {expected_seq}"


def _altered(chain: int, entry_id: int, seq: int) -> str:
    return f"chain {chain}: entry {entry_id} (seq {seq}) hash does not match its content"


@dataclass
class _Walk:
    """One pass over entries in chain order: links, hashes, balance, each account's new total."""

    start: dict[int, tuple[int, str]]
    problems: list[str] = field(default_factory=list)
    chain_ok: bool = True
    entries: int = 0
    unbalanced: int = 0
    without_postings: int = 0
    totals: dict[int, int] = field(default_factory=dict)
    last: dict[int, tuple[int, str]] = field(default_factory=dict)

    def entry(self, entry: tuple, postings: list[tuple[int, int]]) -> None:
        entry_id, chain, seq, prev_hash, link, code, key, actor_id, actor_label, memo, created_at = entry
        self.entries += 1
        expected_seq, expected_prev = self.last.get(chain) or self.start.get(chain, (0, GENESIS_HASH))
        if seq != expected_seq + 1 or prev_hash != expected_prev:
            self.chain_ok = False
            self.problems.append(_not_following(chain, entry_id, seq, expected_seq))
        recomputed = entry_hash(
            chain=chain,
            seq=seq,
            prev_hash=prev_hash,
            code=code,
            idempotency_key=key,
            actor_id=actor_id,
            actor_label=actor_label,
            memo=memo,
            created_at=created_at,
            postings=postings,
        )
        if recomputed != link:
            self.chain_ok = False
            self.problems.append(_altered(chain, entry_id, seq))
        if not postings:
            self.without_postings += 1
        if len(postings) < 2 or sum(amount for _, amount in postings) != 0:
            self.unbalanced += 1
        totals = self.totals
        for account_id, amount in postings:
            totals[account_id] = totals.get(account_id, 0) + amount
        self.last[chain] = (seq, link)

    def run(self, rows: Iterable[tuple]) -> _Walk:
        """Walk ``escrow.statements.journal_rows``: an entry's columns, then its postings."""
        for row in rows:
            self.entry(row[:11], row[11])
        return self

    def run_in_database(
        self,
        *,
        after: Sequence[tuple[int, int]] | None = None,
        chain_range: tuple[int, int] | None = None,
        totals: bool = True,
    ) -> _Walk:
        """The same checks of the same entries as ``run`` over ``journal_rows(after=, chain_range=)``,
        with the hashes recomputed and the links, balances and totals found by PostgreSQL
        (``escrow.statements.journal_check_in_database``, and ``posting_totals_in_database`` unless
        ``totals`` is off): what comes back is the problems, each chain's ends and the totals, not
        the journal."""
        entries, suspects, links = statements.journal_check_in_database(after=after, chain_range=chain_range)
        self.entries += entries
        found: list[tuple[int, int, str]] = []
        for entry_id, chain, seq, prev_hash, link, prev_seq, prev_link, last in links:
            expected_seq, expected_prev = (
                (prev_seq, prev_link) if prev_seq is not None else self.start.get(chain, (0, GENESIS_HASH))
            )
            if seq != expected_seq + 1 or prev_hash != expected_prev:
                self.chain_ok = False
                found.append((chain, seq, _not_following(chain, entry_id, seq, expected_seq)))
            if last:
                self.last[chain] = (seq, link)
        for entry_id, chain, seq, hash_ok, postings, amount in suspects:
            if not hash_ok:
                self.chain_ok = False
                found.append((chain, seq, _altered(chain, entry_id, seq)))
            if not postings:
                self.without_postings += 1
            if postings < 2 or amount != 0:
                self.unbalanced += 1
        self.problems += [problem for *_, problem in sorted(found)]
        if totals:
            self.add_totals(statements.posting_totals_in_database(after=after, chain_range=chain_range))
        return self

    def add_totals(self, totals: dict[int, int]) -> None:
        if not self.totals:
            self.totals = totals
            return
        for account_id, amount in totals.items():
            self.totals[account_id] = self.totals.get(account_id, 0) + amount

    def merge(self, other: _Walk) -> None:
        self.problems += other.problems
        self.chain_ok = self.chain_ok and other.chain_ok
        self.entries += other.entries
        self.unbalanced += other.unbalanced
        self.without_postings += other.without_postings
        self.last.update(other.last)
        self.add_totals(other.totals)


def _slices(chains: list[int], workers: int) -> list[tuple[int, int]]:
    """``workers`` contiguous ranges ``[lo, hi)`` of chain numbers covering every chain there can
    be, each holding about as many of ``chains``."""
    step = -(-len(chains) // workers) or 1
    bounds = [chains[index] for index in range(step, len(chains), step)]
    edges = [0, *bounds, 1 << 16]
    return [(lo, hi) for lo, hi in itertools.pairwise(edges) if lo < hi]


def _in_snapshot(snapshot: str, read: Callable[[], T]) -> T:
    """``read()`` on this thread's own connection, in the exported ``snapshot``."""
    try:
        with transaction.atomic():
            statements.snapshot_import(snapshot)
            return read()
    finally:
        connection.close()


def _walk(start: dict, chains: list[int], workers: int, after: Sequence[tuple[int, int]] | None) -> _Walk:
    """Walk every entry (``after`` None: a full check) or each chain's entries after its seq in
    ``after``. On PostgreSQL the database does the work (``_Walk.run_in_database``): with more
    than one worker, slices of the chains on connections of their own, and the account totals of
    them all on one more, in threads that wait on PostgreSQL while it computes, all reading this
    transaction's exported snapshot."""
    if connection.vendor != "postgresql":
        return _Walk(start).run(statements.journal_rows(after=after))
    snapshot = statements.snapshot_export() if workers > 1 and len(chains) > 1 else None
    if snapshot is None:
        return _Walk(start).run_in_database(after=after)

    def part(chain_range: tuple[int, int]) -> Callable[[], _Walk]:
        lo, hi = chain_range
        mine = None if after is None else [(chain, seq) for chain, seq in after if lo <= chain < hi]
        return lambda: _Walk(start).run_in_database(
            after=mine, chain_range=chain_range if after is None else None, totals=False
        )

    reads: list[Callable[[], Any]] = [lambda: statements.posting_totals_in_database(after=after)]
    reads += [part(chain_range) for chain_range in _slices(chains, workers)]
    with ThreadPoolExecutor(max_workers=len(reads), thread_name_prefix="ledger-verify") as pool:
        totals, *parts = pool.map(lambda read: _in_snapshot(snapshot, read), reads)
    walk = _Walk(start)
    for walked in parts:
        walk.merge(walked)
    walk.totals = totals
    return walk


def ledger_verify(*, full: bool = False, workers: int | None = None) -> LedgerVerification:
    """Check the ledger's invariants (``escrow.models``) from the stored rows: from the checkpoint
    of the last passing check, or from genesis with ``full`` (or when there is no checkpoint).

    The checks read one snapshot of the ledger (a REPEATABLE READ, read-only transaction on
    PostgreSQL): on a live platform an entry posted while they run is seen by all of them or by
    none, so a sound ledger never reads as broken (a chain head ahead of its entries, an entry
    without its postings)."""
    return ledger_verify_for_checkpoint(full=full, workers=workers)[0]


def ledger_verify_for_checkpoint(
    *, full: bool = False, workers: int | None = None
) -> tuple[LedgerVerification, CheckpointMove]:
    """``ledger_verify`` and what it verified, for a passing check to become the next checkpoint."""
    if connection.in_atomic_block:  # the caller's transaction decides what is seen, in this thread
        return _ledger_verify(full=full, workers=1)
    with transaction.atomic():
        sql.snapshot_read_only()
        return _ledger_verify(full=full, workers=FULL_CHECK_WORKERS if workers is None else workers)


def _ledger_verify(*, full: bool, workers: int) -> tuple[LedgerVerification, CheckpointMove]:
    checkpoint = None if full else LedgerCheckpoint.objects.first()
    full = checkpoint is None
    start: dict[int, tuple[int, str]] = {}
    if checkpoint is not None:
        start = {chain: (seq, link) for chain, seq, link in LedgerCheckpointHead.objects.values_list()}
    heads = {chain: (seq, link) for chain, seq, link in ChainHead.objects.values_list("chain", "seq", "hash")}
    chains = sorted(set(heads) | set(start))
    after = None if full else [(chain, start.get(chain, (0, ""))[0]) for chain in chains]
    walk = _walk(start, chains, workers, after)
    problems = walk.problems
    chain_ok = walk.chain_ok
    for chain in sorted(set(heads) | set(walk.last) | set(start)):
        last = walk.last.get(chain) or start.get(chain, (0, GENESIS_HASH))
        if heads.get(chain, (0, GENESIS_HASH)) != last:
            chain_ok = False
            problems.append(f"chain {chain}: head {heads.get(chain)} differs from its last entry {last}")
    if walk.without_postings:
        chain_ok = False
        problems.append(f"{walk.without_postings} entries have no postings")
    if walk.unbalanced:
        problems.append(f"{walk.unbalanced} entries do not balance")

    off = custody = owed = 0
    totals: dict[int, int] = {}
    base = {} if full else statements.checkpoint_totals()
    slots = LedgerCheckpointTotals.TOTALS_PER_BLOCK
    for account_id, kind, balance in statements.accounts_rows():
        block = base.get(account_id // slots) if base else None
        total = block[account_id % slots] if block is not None else 0
        new = walk.totals.get(account_id)
        if new is not None:
            total += new
            totals[account_id] = total
        if balance != (total if kind in Account.DEBIT_SIDE else -total):
            off += 1
        if kind == Account.Kind.CUSTODY:
            custody += balance
        elif kind in LIABILITY_KINDS:
            owed += balance
    if off:
        problems.append(f"{off} account balances differ from their postings")
    if custody != owed:
        problems.append("custody differs from escrow + settlement + refunds payable")
    entries = walk.entries + (checkpoint.entries if checkpoint is not None else 0)
    result: LedgerVerification = {
        "balanced": walk.unbalanced == 0,
        "chain_ok": chain_ok,
        "custody_matches": custody == owed,
        "accounts_match": off == 0,
        "entries": entries,
        "head_hash": heads_hash((chain, seq, link) for chain, (seq, link) in heads.items()),
        "problems": problems,
        "full": full,
    }
    move = CheckpointMove(
        base_check_id=checkpoint.ledger_check_id if checkpoint is not None else None,
        full=full,
        entries=entries,
        heads=heads,
        totals=totals,
    )
    return result, move


def ledger_ok(result: LedgerVerification) -> bool:
    return result["balanced"] and result["chain_ok"] and result["custody_matches"] and result["accounts_match"]


DayTotals = dict[int, tuple[int, int, int]]  # account → (released, fees, releases_count)


def settlement_day_totals(*, day: date) -> DayTotals:
    """The ``SettlementDayTotal`` rows of ``day`` (Beijing), as kept while the postings were made."""
    rows = SettlementDayTotal.objects.filter(day=day).values_list("account_id", "released", "fees", "releases_count")
    return {account: (released, fees, count) for account, released, fees, count in rows}


def settlement_day_totals_from_postings(*, day: date) -> DayTotals:
    """``day``'s release and fee credits to merchant settlement accounts summed from the journal's
    postings (the day's window ``(midnight, next midnight]``, as a settlement reads it): what the
    day's totals must equal. Reads every posting of the day: a check, not the settlement's path."""
    money = BigIntegerField()
    rows = (
        Posting.objects.filter(
            account__kind=Account.Kind.MERCHANT_SETTLEMENT,
            entry__code__in=[JournalEntry.Code.RELEASE, JournalEntry.Code.FEE],
            entry__created_at__gt=clock.local_midnight(day),
            entry__created_at__lte=clock.local_midnight(day + timedelta(days=1)),
        )
        .values("account_id")
        .annotate(
            released=Sum(
                Case(When(entry__code=JournalEntry.Code.RELEASE, then=-F("amount")), default=Value(0)),
                output_field=money,
            ),
            fees=Sum(
                Case(When(entry__code=JournalEntry.Code.FEE, then=-F("amount")), default=Value(0)), output_field=money
            ),
            count=Count("pk", filter=Q(entry__code=JournalEntry.Code.RELEASE)),
        )
        .order_by()
        .values_list("account_id", "released", "fees", "count")
    )
    return {account: (released, fees, count) for account, released, fees, count in rows}


def settlement_day_mismatches(*, day: date) -> list[tuple[int, tuple[int, int, int], tuple[int, int, int]]]:
    """The accounts whose kept totals of ``day`` differ from the day's postings:
    ``(account, kept, from the postings)``, each ``(released, fees, releases_count)`` (zeros for a
    missing side). Empty when the day reconciles: what a settlement of the day pays is exactly
    what the ledger released and charged in fees that day."""
    kept, posted = settlement_day_totals(day=day), settlement_day_totals_from_postings(day=day)
    zero = (0, 0, 0)
    return [
        (account, kept.get(account, zero), posted.get(account, zero))
        for account in sorted(kept.keys() | posted.keys())
        if tuple(kept.get(account, zero)) != tuple(posted.get(account, zero))
    ]
