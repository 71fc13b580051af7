"""Writes to the escrow ledger (chart, entries and invariants: see ``escrow.models``).

``journal_post`` is the one function that moves money. It runs inside the caller's transaction, so
a card service can lock its card, post, and change the card's state in one commit. ``ledger_post``
and ``ledger_transfer`` wrap it in their own durable transaction for callers that only move money.

The posting path is written in plain SQL on purpose: it is the platform's hottest transaction
(every confirmed service runs it) and the ORM would spend more time compiling its six statements
than PostgreSQL spends running them (bench/ledger.py measures it). The statements are the ones the
ORM would issue: rows locked with ``SELECT ... FOR UPDATE`` in primary-key order, balances changed
with ``balance = balance + delta`` (what ``F("balance") + delta`` compiles to), never
read-modify-write.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from core import clock
from core.errors import IdempotencyKeyReused
from core.fields import MAX_FEN
from escrow.chain import GENESIS_HASH, entry_hash
from escrow.errors import InsufficientFunds, UnbalancedEntry, UnknownAccount
from escrow.gateways import get_gateway
from escrow.models import Account, ChainHead, JournalEntry, LedgerCheck, Posting, Reconciliation

log = logging.getLogger(__name__)

_ACCOUNT = Account._meta.db_table
_ENTRY = JournalEntry._meta.db_table
_POSTING = Posting._meta.db_table
_HEAD = ChainHead._meta.db_table


@dataclass(frozen=True, slots=True)
class Leg:
    """One posting to be made: ``amount`` fen, positive to debit ``account_id``, negative to credit."""

    account_id: int
    amount: int


def account_open(*, kind: str, name: str) -> Account:
    """Open an account with a zero balance (card escrow and merchant settlement accounts)."""
    if kind in Account.SINGLETONS:
        raise ValueError(f"{kind} is a singleton account, created by migration")
    return Account.objects.create(kind=kind, name=name[:200], created_at=clock.now())


SINGLETON_NAMES = {
    Account.Kind.CUSTODY: "Custody bank account",
    Account.Kind.REFUND_PAYABLE: "Refunds payable to consumers",
}


def singleton_account(kind: str) -> Account:
    """The custody or refunds-payable account (migration 0002 opens them; opened here if missing)."""
    account, _ = Account.objects.get_or_create(
        kind=kind, defaults={"name": SINGLETON_NAMES[kind], "created_at": clock.now()}
    )
    return account


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


def _lock_accounts(cursor, account_ids: list[int], idempotency_key: str) -> list[tuple[int, str, int, int | None]]:
    """Lock the accounts in primary-key order; also report an entry already posted under the key.

    One round trip. The key lookup reads the statement's snapshot, so a racing post of the same
    key that commits while we wait for the lock is caught by the unique index instead, and
    ``ledger_post`` retries once.
    """
    placeholders = ", ".join(["%s"] * len(account_ids))
    lock = " FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    cursor.execute(
        f"SELECT a.id, a.kind, a.balance, (SELECT e.id FROM {_ENTRY} e WHERE e.idempotency_key = %s) "
        f"FROM {_ACCOUNT} a WHERE a.id IN ({placeholders}) ORDER BY a.id{lock}",
        [idempotency_key, *account_ids],
    )
    return cursor.fetchall()


def _lock_chain_head(cursor, chain: int) -> tuple[int, str]:
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    select = f"SELECT seq, hash FROM {_HEAD} WHERE chain = %s{lock}"
    cursor.execute(select, [chain])
    row = cursor.fetchone()
    if row is None:  # first entry on this chain
        cursor.execute(
            f"INSERT INTO {_HEAD} (chain, seq, hash) VALUES (%s, 0, %s) ON CONFLICT (chain) DO NOTHING",
            [chain, GENESIS_HASH],
        )
        cursor.execute(select, [chain])
        row = cursor.fetchone()
    return row[0], row[1]


def _existing_entry(*, entry_id: int, legs: Sequence[Leg]) -> JournalEntry:
    """The entry already posted under this key; the same key with other postings is a conflict."""
    entry = JournalEntry.objects.get(pk=entry_id)
    stored = sorted(Posting.objects.filter(entry_id=entry_id).values_list("account_id", "amount"))
    if stored != sorted((leg.account_id, leg.amount) for leg in legs):
        raise IdempotencyKeyReused()
    entry.replayed = True
    return entry


def journal_post(
    *,
    code: str,
    legs: Sequence[Leg],
    idempotency_key: str,
    actor_id: int | None = None,
    actor_label: str = "",
    memo: str = "",
) -> JournalEntry:
    """Post one balanced entry in the caller's transaction and return it.

    Posting under an ``idempotency_key`` that was already posted returns that entry and moves
    nothing (its ``replayed`` is True). Raises ``InsufficientFunds`` if any account would fall
    below zero. A newly posted entry carries ``balances``: each account's balance after it.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("journal_post must run inside transaction.atomic()")
    if code not in JournalEntry.Code.values:
        raise UnbalancedEntry(f"unknown entry code {code!r}")
    if not 1 <= len(idempotency_key) <= 255:
        raise UnbalancedEntry("idempotency key must be 1-255 characters")
    _check_legs(legs)
    account_ids = sorted(leg.account_id for leg in legs)
    delta = {leg.account_id: leg.amount for leg in legs}

    with connection.cursor() as cursor:
        rows = _lock_accounts(cursor, account_ids, idempotency_key)
        if rows and rows[0][3] is not None:
            return _existing_entry(entry_id=rows[0][3], legs=legs)
        if len(rows) != len(account_ids):
            raise UnknownAccount()
        balances: dict[int, int] = {}
        for account_id, kind, balance, _ in rows:
            # Sign by side: a debit raises custody and lowers every credit-side account.
            delta[account_id] = delta[account_id] if kind in Account.DEBIT_SIDE else -delta[account_id]
            balances[account_id] = balance + delta[account_id]
            if balances[account_id] < 0:
                raise InsufficientFunds()

        cases = " ".join(["WHEN %s THEN %s"] * len(account_ids))
        ids = ", ".join(["%s"] * len(account_ids))
        cursor.execute(
            f"UPDATE {_ACCOUNT} SET balance = balance + CASE id {cases} END WHERE id IN ({ids})",
            [value for account_id in account_ids for value in (account_id, delta[account_id])] + account_ids,
        )

        chain = legs[0].account_id % settings.LEDGER_CHAIN_STRIPES
        prev_seq, prev_hash = _lock_chain_head(cursor, chain)
        seq = prev_seq + 1
        created_at = clock.now()
        link = entry_hash(
            chain=chain,
            seq=seq,
            prev_hash=prev_hash,
            code=code,
            idempotency_key=idempotency_key,
            actor_id=actor_id,
            actor_label=actor_label,
            memo=memo,
            created_at=created_at,
            postings=[(leg.account_id, leg.amount) for leg in legs],
        )
        cursor.execute(
            f"INSERT INTO {_ENTRY} (code, idempotency_key, actor_id, actor_label, memo, created_at, "
            "chain, seq, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [
                code,
                idempotency_key,
                actor_id,
                actor_label,
                memo,
                connection.ops.adapt_datetimefield_value(created_at),
                chain,
                seq,
                prev_hash,
                link,
            ],
        )
        entry_id = cursor.fetchone()[0]
        cursor.execute(
            f"INSERT INTO {_POSTING} (entry_id, account_id, amount) VALUES {', '.join(['(%s, %s, %s)'] * len(legs))}",
            [value for leg in legs for value in (entry_id, leg.account_id, leg.amount)],
        )
        cursor.execute(f"UPDATE {_HEAD} SET seq = %s, hash = %s WHERE chain = %s", [seq, link, chain])

    entry = JournalEntry(
        id=entry_id,
        code=code,
        idempotency_key=idempotency_key,
        actor_id=actor_id,
        actor_label=actor_label,
        memo=memo,
        created_at=created_at,
        chain=chain,
        seq=seq,
        prev_hash=prev_hash,
        hash=link,
    )
    entry._state.adding = False
    entry._state.db = connection.alias
    entry.balances = balances  # each account's balance after this entry, read under its lock
    entry.replayed = False
    return entry


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
    """Compare custody in the ledger with the gateway's own record, and keep the result."""
    gateway = get_gateway()
    external = gateway.custody_balance()
    custody = Account.objects.values_list("balance", flat=True).get(pk=singleton_account(Account.Kind.CUSTODY).pk)
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


def ledger_check_run() -> LedgerCheck:
    """Verify the whole ledger now and keep the result (the nightly job, and "verify now")."""
    import time

    from escrow.selectors import ledger_verify

    started = time.monotonic()
    result = ledger_verify()
    return LedgerCheck.objects.create(
        balanced=result["balanced"],
        chain_ok=result["chain_ok"],
        custody_matches=result["custody_matches"],
        accounts_match=result["accounts_match"],
        entries=result["entries"],
        head_hash=result["head_hash"],
        problems=result["problems"][:LEDGER_CHECK_PROBLEMS_KEPT],
        problems_total=len(result["problems"]),
        seconds=round(time.monotonic() - started, 3),
        created_at=clock.now(),
    )
