"""Reads of the escrow ledger: balances, an account's entries, and the regulator's verification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypedDict

from django.db import connection, transaction
from django.db.models import Q, Sum

from core import sql
from escrow import statements
from escrow.chain import GENESIS_HASH, entry_hash, heads_hash
from escrow.models import Account, ChainHead, JournalEntry, Posting

# What the custody bank must hold: everything the platform owes.
LIABILITY_KINDS = (Account.Kind.CARD_ESCROW, Account.Kind.MERCHANT_SETTLEMENT, Account.Kind.REFUND_PAYABLE)


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


def _custody_matches() -> bool:
    custody = Account.objects.filter(kind=Account.Kind.CUSTODY).aggregate(total=Sum("balance"))["total"] or 0
    owed = Account.objects.filter(kind__in=LIABILITY_KINDS).aggregate(total=Sum("balance"))["total"] or 0
    return custody == owed


def _verify_chains(problems: list[str]) -> tuple[bool, int]:
    """Recompute every chain link from the stored rows, streaming them in chain order."""
    heads = {chain: (seq, link) for chain, seq, link in ChainHead.objects.values_list("chain", "seq", "hash")}
    rows = (
        Posting.objects.order_by("entry__chain", "entry__seq", "id")
        .values_list(
            "entry_id",
            "entry__chain",
            "entry__seq",
            "entry__prev_hash",
            "entry__hash",
            "entry__code",
            "entry__idempotency_key",
            "entry__actor_id",
            "entry__actor_label",
            "entry__memo",
            "entry__created_at",
            "account_id",
            "amount",
        )
        .iterator(chunk_size=5000)
    )
    ok = True
    seen = 0
    last: dict[int, tuple[int, str]] = {}
    current: tuple | None = None
    postings: list[tuple[int, int]] = []

    def close(entry: tuple) -> None:
        nonlocal ok, seen
        entry_id, chain, seq, prev_hash, link, code, key, actor_id, actor_label, memo, created_at = entry
        seen += 1
        expected_seq, expected_prev = last.get(chain, (0, GENESIS_HASH))
        if seq != expected_seq + 1 or prev_hash != expected_prev:
            ok = False
            problems.append(f"chain {chain}: entry {entry_id} (seq {seq}) does not follow seq {expected_seq}")
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
            ok = False
            problems.append(f"chain {chain}: entry {entry_id} (seq {seq}) hash does not match its content")
        last[chain] = (seq, link)

    for row in rows:
        entry = row[:11]
        if current is not None and entry[0] != current[0]:
            close(current)
            postings = []
        current = entry
        postings.append((row[11], row[12]))
    if current is not None:
        close(current)

    for chain in set(heads) | set(last):
        if heads.get(chain, (0, GENESIS_HASH)) != last.get(chain, (0, GENESIS_HASH)):
            ok = False
            problems.append(f"chain {chain}: head {heads.get(chain)} differs from its last entry {last.get(chain)}")
    return ok, seen


def ledger_verify() -> LedgerVerification:
    """Check the ledger's invariants (``escrow.models``) from the stored rows.

    The checks read one snapshot of the ledger (a REPEATABLE READ, read-only transaction on
    PostgreSQL): on a live platform an entry posted while they run is seen by all of them or by
    none, so a sound ledger never reads as broken (a chain head ahead of its entries, an entry
    without its postings)."""
    if connection.in_atomic_block:  # the caller's transaction decides what is seen
        return _ledger_verify()
    with transaction.atomic():
        sql.snapshot_read_only()
        return _ledger_verify()


def _ledger_verify() -> LedgerVerification:
    problems: list[str] = []
    unbalanced = statements.unbalanced_entries_count()
    if unbalanced:
        problems.append(f"{unbalanced} entries do not balance")
    off = statements.accounts_off_their_postings_count()
    if off:
        problems.append(f"{off} account balances differ from their postings")
    custody_matches = _custody_matches()
    if not custody_matches:
        problems.append("custody differs from escrow + settlement + refunds payable")
    chain_ok, hashed = _verify_chains(problems)
    entries = JournalEntry.objects.count()
    if hashed != entries:
        chain_ok = False
        problems.append(f"{entries - hashed} entries have no postings")
    heads = ChainHead.objects.values_list("chain", "seq", "hash")
    return {
        "balanced": unbalanced == 0,
        "chain_ok": chain_ok,
        "custody_matches": custody_matches,
        "accounts_match": off == 0,
        "entries": entries,
        "head_hash": heads_hash(heads),
        "problems": problems,
    }


def ledger_ok(result: LedgerVerification) -> bool:
    return result["balanced"] and result["chain_ok"] and result["custody_matches"] and result["accounts_match"]
