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

``journal_post_many`` posts many entries at once (a chunk of a mass refund, a batch of refund
payments): the same entries, keys, chains and hashes as as many ``journal_post`` calls, with the
same handful of statements for the whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from core import clock
from core import rows as sql_rows
from core.errors import IdempotencyKeyReused
from core.fields import MAX_FEN
from core.gateways import get_gateway
from core.rows import insert as row_insert
from escrow.chain import GENESIS_HASH, entry_hash
from escrow.errors import InsufficientFunds, UnbalancedEntry, UnknownAccount
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
    """Open an account with a zero balance (card escrow and merchant settlement accounts)."""
    if kind in Account.SINGLETONS:
        raise ValueError(f"{kind} is a singleton account, created by migration")
    account = Account(kind=kind, name=name[:200], created_at=clock.now())
    row_insert(account)  # every purchase opens one: the plain INSERT of ``create()``
    return account


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


def singleton_account_id(kind: str) -> int:
    """The custody or refunds-payable account's id: one indexed read, without compiling a query.

    Not cached in the process: looked up by its kind each time, so a test database that was
    flushed and given new singleton accounts is always seen as it is."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {_ACCOUNT} WHERE kind = %s", [kind])
        row = cursor.fetchone()
    return row[0] if row is not None else singleton_account(kind).id


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


def _lock_accounts(account_ids: list[int], idempotency_key: str) -> list[tuple[int, str, int, int | None]]:
    """Lock the accounts in primary-key order; also report an entry already posted under the key.

    One round trip. The key lookup reads the statement's snapshot, so a racing post of the same
    key that commits while we wait for the lock is caught by the unique index instead, and
    ``ledger_post`` retries once.
    """
    placeholders = ", ".join(["%s"] * len(account_ids))
    lock = " FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    return sql_rows.fetch(
        f"SELECT a.id, a.kind, a.balance, (SELECT e.id FROM {_ENTRY} e WHERE e.idempotency_key = %s) "
        f"FROM {_ACCOUNT} a WHERE a.id IN ({placeholders}) ORDER BY a.id{lock}",
        [idempotency_key, *account_ids],
    )


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
    need_id: bool = True,
) -> JournalEntry:
    """Post one balanced entry in the caller's transaction and return it.

    Posting under an ``idempotency_key`` that was already posted returns that entry and moves
    nothing (its ``replayed`` is True). Raises ``InsufficientFunds`` if any account would fall
    below zero. A newly posted entry carries ``balances``: each account's balance after it.

    On PostgreSQL the post takes three round trips, each statement prepared once per session
    (``core.rows``): lock the accounts (and look up the key), add the balances and lock the chain
    head, then move the head and write the entry with its postings. A caller that does not need
    the new entry's ``id`` (``need_id=False``; the entry's ``id`` is then None) lets that last
    write wait and travel with its transaction's next statement (``core.rows.writes_ahead``); a
    failure of it (the key posted by a racing transaction) then surfaces there, so such a caller
    must hold a lock that keeps the same key from being posted concurrently.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("journal_post must run inside transaction.atomic()")
    _check_entry(code, idempotency_key, legs)
    account_ids = sorted(leg.account_id for leg in legs)
    delta = {leg.account_id: leg.amount for leg in legs}

    one_trip = connection.vendor == "postgresql"  # it takes several statements in one query
    with connection.cursor() as cursor, sql_rows.writes_ahead():
        rows = _lock_accounts(account_ids, idempotency_key)
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

        chain = legs[0].account_id % settings.LEDGER_CHAIN_STRIPES
        if one_trip:
            prev_seq, prev_hash = _balances_add_and_lock_chain_head(cursor, delta, chain)
        else:
            _balances_add(cursor, delta)
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
        insert_entry = (
            f"INSERT INTO {_ENTRY} (code, idempotency_key, actor_id, actor_label, memo, created_at, "
            "chain, seq, prev_hash, hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
        )
        entry_values = [
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
        ]
        move_head = (f"UPDATE {_HEAD} SET seq = %s, hash = %s WHERE chain = %s", [seq, link, chain])
        if one_trip:
            # The chain head, the entry and its postings in one round trip: the postings take the
            # new entry's id from the INSERT before them (a data-modifying WITH).
            values = ", ".join(["(%s::bigint, %s::bigint)"] * len(legs))  # typed when prepared
            write_entry = (
                f"WITH e AS ({insert_entry}), p AS (INSERT INTO {_POSTING} (entry_id, account_id, amount) "
                f"SELECT e.id, v.account_id, v.amount FROM e, (VALUES {values}) AS v (account_id, amount)) "
                "SELECT id FROM e",
                entry_values + [value for leg in legs for value in (leg.account_id, leg.amount)],
            )
            if need_id:
                sql_rows.execute_all([move_head])  # goes in front of the entry's INSERT
                entry_id = sql_rows.fetch(*write_entry)[0][0]
            else:
                sql_rows.execute_all([move_head, write_entry])
                entry_id = None
        else:
            cursor.execute(insert_entry, entry_values)
            entry_id = cursor.fetchone()[0]
            cursor.execute(
                f"INSERT INTO {_POSTING} (entry_id, account_id, amount) "
                f"VALUES {', '.join(['(%s, %s, %s)'] * len(legs))}",
                [value for leg in legs for value in (entry_id, leg.account_id, leg.amount)],
            )
            cursor.execute(*move_head)

    entry = _posted(
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
    entry.balances = balances  # each account's balance after this entry, read under its lock
    return entry


def _balances_add_sql(delta: dict[int, int]) -> tuple[str, list[int]]:
    account_ids = sorted(delta)
    cases = " ".join(["WHEN %s THEN CAST(%s AS bigint)"] * len(account_ids))  # typed when prepared
    ids = ", ".join(["%s"] * len(account_ids))
    return (
        f"UPDATE {_ACCOUNT} SET balance = balance + CASE id {cases} END WHERE id IN ({ids})",
        [value for account_id in account_ids for value in (account_id, delta[account_id])] + account_ids,
    )


def _balances_add(cursor, delta: dict[int, int]) -> None:
    """Add each signed ``delta`` to its (locked) account's balance, in one statement."""
    cursor.execute(*_balances_add_sql(delta))


def _balances_add_and_lock_chain_head(cursor, delta: dict[int, int], chain: int) -> tuple[int, str]:
    """``_balances_add`` then ``_lock_chain_head``, in that order, in one round trip (PostgreSQL,
    inside ``core.rows.writes_ahead``: the UPDATE goes in front of the SELECT)."""
    sql_rows.execute_all([_balances_add_sql(delta)])
    found = sql_rows.fetch(f"SELECT seq, hash FROM {_HEAD} WHERE chain = %s FOR UPDATE", [chain])
    return found[0] if found else _lock_chain_head(cursor, chain)  # a chain's first entry


def _posted(**fields) -> JournalEntry:
    """The ``JournalEntry`` object of a row just written in plain SQL."""
    entry = JournalEntry(**fields)
    entry._state.adding = False
    entry._state.db = connection.alias
    entry.replayed = False
    return entry


def _rows_per_statement(columns: int) -> int:
    """Rows of ``columns`` parameters one multi-row INSERT may carry on this database."""
    return max(1, (connection.features.max_query_params or 65_535) // columns)


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
    for new in entries:
        _check_entry(new.code, new.idempotency_key, new.legs)
    keys = [new.idempotency_key for new in entries]
    if len(set(keys)) != len(keys):
        raise UnbalancedEntry("an idempotency key appears twice in one batch")
    account_ids = sorted({leg.account_id for new in entries for leg in new.legs})

    with connection.cursor() as cursor:
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        cursor.execute(
            f"SELECT id, kind, balance FROM {_ACCOUNT} WHERE id IN ({', '.join(['%s'] * len(account_ids))}) "
            f"ORDER BY id{lock}",
            account_ids,
        )
        accounts = {account_id: (kind, balance) for account_id, kind, balance in cursor.fetchall()}
        if len(accounts) != len(account_ids):
            raise UnknownAccount()
        # Read after the lock: an entry of one of these keys committed while we waited is seen here.
        cursor.execute(
            f"SELECT idempotency_key, id FROM {_ENTRY} WHERE idempotency_key IN ({', '.join(['%s'] * len(keys))})",
            keys,
        )
        existing = dict(cursor.fetchall())
        replayed = _replayed_entries(cursor, entries, existing) if existing else {}
        fresh = [new for new in entries if new.idempotency_key not in existing]

        balance = {account_id: accounts[account_id][1] for account_id in account_ids}
        delta = dict.fromkeys(account_ids, 0)
        after: list[dict[int, int]] = []
        for new in fresh:
            balances = {}
            for leg in new.legs:
                # Sign by side, as in journal_post: a debit raises custody and lowers the others.
                signed = leg.amount if accounts[leg.account_id][0] in Account.DEBIT_SIDE else -leg.amount
                balance[leg.account_id] += signed
                delta[leg.account_id] += signed
                if balance[leg.account_id] < 0:
                    raise InsufficientFunds()
                balances[leg.account_id] = balance[leg.account_id]
            after.append(balances)
        delta = {account_id: amount for account_id, amount in delta.items() if amount}
        if delta:
            _balances_add(cursor, delta)
        posted = _entries_insert(cursor, fresh) if fresh else []

    for entry, balances in zip(posted, after, strict=True):
        entry.balances = balances
    by_key = {entry.idempotency_key: entry for entry in posted} | replayed
    return [by_key[key] for key in keys]


def _replayed_entries(cursor, entries: Sequence[NewEntry], existing: dict[str, int]) -> dict[str, JournalEntry]:
    """The entries already posted under keys of the batch, checked to carry the same postings."""
    cursor.execute(
        f"SELECT entry_id, account_id, amount FROM {_POSTING} WHERE entry_id IN ({', '.join(['%s'] * len(existing))})",
        list(existing.values()),
    )
    stored: dict[int, list[tuple[int, int]]] = {}
    for entry_id, account_id, amount in cursor.fetchall():
        stored.setdefault(entry_id, []).append((account_id, amount))
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


def _entries_insert(cursor, entries: Sequence[NewEntry]) -> list[JournalEntry]:
    """Write new entries on their chains (heads locked in chain order) with their postings."""
    stripes = settings.LEDGER_CHAIN_STRIPES
    chains = sorted({new.legs[0].account_id % stripes for new in entries})
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    select = f"SELECT chain, seq, hash FROM {_HEAD} WHERE chain IN ({{}}) ORDER BY chain{lock}"
    cursor.execute(select.format(", ".join(["%s"] * len(chains))), chains)
    heads = {chain: (seq, link) for chain, seq, link in cursor.fetchall()}
    missing = [chain for chain in chains if chain not in heads]
    if missing:  # first entries on these chains
        cursor.execute(
            f"INSERT INTO {_HEAD} (chain, seq, hash) VALUES {', '.join(['(%s, 0, %s)'] * len(missing))} "
            "ON CONFLICT (chain) DO NOTHING",
            [value for chain in missing for value in (chain, GENESIS_HASH)],
        )
        cursor.execute(select.format(", ".join(["%s"] * len(missing))), missing)
        heads.update({chain: (seq, link) for chain, seq, link in cursor.fetchall()})

    created_at = clock.now()
    at = connection.ops.adapt_datetimefield_value(created_at)
    posted: list[JournalEntry] = []
    for new in entries:
        chain = new.legs[0].account_id % stripes
        prev_seq, prev_hash = heads[chain]
        seq = prev_seq + 1
        link = entry_hash(
            chain=chain,
            seq=seq,
            prev_hash=prev_hash,
            code=new.code,
            idempotency_key=new.idempotency_key,
            actor_id=new.actor_id,
            actor_label=new.actor_label,
            memo=new.memo,
            created_at=created_at,
            postings=[(leg.account_id, leg.amount) for leg in new.legs],
        )
        heads[chain] = (seq, link)
        posted.append(
            _posted(
                code=new.code,
                idempotency_key=new.idempotency_key,
                actor_id=new.actor_id,
                actor_label=new.actor_label,
                memo=new.memo,
                created_at=created_at,
                chain=chain,
                seq=seq,
                prev_hash=prev_hash,
                hash=link,
            )
        )

    columns = "code, idempotency_key, actor_id, actor_label, memo, created_at, chain, seq, prev_hash, hash"
    values = [
        (e.code, e.idempotency_key, e.actor_id, e.actor_label, e.memo, at, e.chain, e.seq, e.prev_hash, e.hash)
        for e in posted
    ]
    row_params = f"({', '.join(['%s'] * 10)})"
    ids: dict[str, int] = {}
    step = _rows_per_statement(10)
    for start in range(0, len(values), step):
        rows = values[start : start + step]
        cursor.execute(
            f"INSERT INTO {_ENTRY} ({columns}) VALUES {', '.join([row_params] * len(rows))} "
            "RETURNING idempotency_key, id",
            [value for row in rows for value in row],
        )
        ids.update(cursor.fetchall())
    for entry in posted:
        entry.id = ids[entry.idempotency_key]

    postings = [
        (entry.id, leg.account_id, leg.amount) for entry, new in zip(posted, entries, strict=True) for leg in new.legs
    ]
    step = _rows_per_statement(3)
    for start in range(0, len(postings), step):
        rows = postings[start : start + step]
        cursor.execute(
            f"INSERT INTO {_POSTING} (entry_id, account_id, amount) VALUES {', '.join(['(%s, %s, %s)'] * len(rows))}",
            [value for row in rows for value in row],
        )

    cases = " ".join(["WHEN %s THEN %s"] * len(chains))
    cursor.execute(
        f"UPDATE {_HEAD} SET seq = CASE chain {cases} END, hash = CASE chain {cases} END "
        f"WHERE chain IN ({', '.join(['%s'] * len(chains))})",
        [
            *(value for chain in chains for value in (chain, heads[chain][0])),
            *(value for chain in chains for value in (chain, heads[chain][1])),
            *chains,
        ],
    )
    return posted


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
        milliseconds=round((time.monotonic() - started) * 1000),
        created_at=clock.now(),
    )
