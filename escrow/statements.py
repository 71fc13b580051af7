"""The ledger's own statements: the one place in ``escrow`` where SQL is written by hand.

The posting path (``escrow.services.journal_post`` and ``journal_post_many``) is the platform's
hottest transaction, and the ORM would spend more time compiling its statements than PostgreSQL
spends running them (bench/ledger.py measures it). These are the statements the ORM would issue:
rows locked with ``SELECT ... FOR UPDATE`` in primary-key order, balances changed with
``balance = balance + delta`` (what ``F("balance") + delta`` compiles to), never
read-modify-write. Table and column names come from the models; the reads that repeat are
prepared once per session (``core.sql.fetch``). The verification's reads live here too.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from django.db import connection

from core import sql
from escrow.chain import GENESIS_HASH
from escrow.models import Account, ChainHead, JournalEntry, LedgerCheckpointTotals, Posting, SettlementDayTotal

_ACCOUNT = sql.table(Account)
_ENTRY = sql.table(JournalEntry)
_POSTING = sql.table(Posting)
_HEAD = sql.table(ChainHead)
_DAY_TOTAL = sql.table(SettlementDayTotal)
ENTRY_COLUMNS = ("code", "idempotency_key", "actor_id", "actor_label", "memo", "created_at", "chain", "seq")
ENTRY_COLUMNS += ("prev_hash", "hash")


# Above this many rows, a statement that gives each row its own value joins arrays instead of
# branching on a CASE (``balances_add``).
CASE_ROWS_MAX = 64


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _lock(of: str = "") -> str:
    if of and connection.features.has_select_for_update_of:
        return f" FOR UPDATE OF {of}"
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


def city_wide_account_id(kind: str) -> int | None:
    """The id of the city-wide account of ``kind``: one read of its partial unique index."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {_ACCOUNT} WHERE kind = %s AND city_wide", [kind])
        row = cursor.fetchone()
    return row[0] if row is not None else None


def accounts_lock(account_ids: Sequence[int], *, idempotency_key: str | None = None) -> list[tuple]:
    """Lock the accounts in primary-key order: ``(id, kind, balance, entry id)`` per account, the
    last the id of an entry already posted under ``idempotency_key`` (None without one).

    One round trip. The key lookup reads the statement's snapshot, so a racing post of the same
    key that commits while we wait for the lock is caught by the unique index instead."""
    key = f"(SELECT e.id FROM {_ENTRY} e WHERE e.idempotency_key = %s)" if idempotency_key else "NULL"
    params = [idempotency_key] if idempotency_key else []
    ids, ids_params = _in_list("a.id", "bigint", account_ids)
    return sql.fetch(
        f"SELECT a.id, a.kind, a.balance, {key} FROM {_ACCOUNT} a WHERE {ids} ORDER BY a.id{_lock('a')}",
        [*params, *ids_params],
    )


def _in_list(column: str, db_type: str, values: Sequence) -> tuple[str, list]:
    """``column`` among ``values``: ``IN (...)`` for a few (a post's two or three accounts, the
    statement prepared for that count), one array on PostgreSQL for a batch's thousands
    (``= ANY``: one statement text whatever their number, read as one parameter)."""
    if len(values) > CASE_ROWS_MAX and connection.vendor == "postgresql":
        return f"{column} = ANY(%s::{db_type}[])", [sql.array_param(values)]
    return f"{column} IN ({_placeholders(len(values))})", list(values)


def entry_ids_by_key(keys: Sequence[str]) -> dict[str, int]:
    where, params = _in_list("idempotency_key", "text", keys)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT idempotency_key, id FROM {_ENTRY} WHERE {where}", params)
        return dict(cursor.fetchall())


def postings_of(entry_ids: Sequence[int]) -> dict[int, list[tuple[int, int]]]:
    """``(account_id, amount)`` of each entry's postings."""
    stored: dict[int, list[tuple[int, int]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT entry_id, account_id, amount FROM {_POSTING} WHERE entry_id IN ({_placeholders(len(entry_ids))})",
            list(entry_ids),
        )
        for entry_id, account_id, amount in cursor.fetchall():
            stored.setdefault(entry_id, []).append((account_id, amount))
    return stored


def balances_add(delta: dict[int, int]) -> sql.Statement:
    """Add each signed ``delta`` to its (locked) account's balance, in one statement."""
    account_ids = sorted(delta)
    if len(account_ids) > CASE_ROWS_MAX and connection.vendor == "postgresql":
        # A CASE of n branches costs each of the n rows a walk of it: n * n comparisons, minutes for
        # a batch of a hundred thousand payouts. Two arrays joined by id cost n.
        return (
            f"UPDATE {_ACCOUNT} a SET balance = a.balance + d.delta "
            "FROM unnest(%s::bigint[], %s::bigint[]) AS d (id, delta) WHERE a.id = d.id",
            [sql.array_param(account_ids), sql.array_param([delta[account_id] for account_id in account_ids])],
        )
    cases = " ".join(["WHEN %s THEN CAST(%s AS bigint)"] * len(account_ids))  # typed when prepared
    return (
        f"UPDATE {_ACCOUNT} SET balance = balance + CASE id {cases} END "
        f"WHERE id IN ({_placeholders(len(account_ids))})",
        [value for account_id in account_ids for value in (account_id, delta[account_id])] + account_ids,
    )


def settlement_days_add(totals: dict[tuple[int, date], tuple[int, int, int]]) -> sql.Statement:
    """Add ``(released, fees, releases_count)`` to each ``(account, day)``'s
    ``SettlementDayTotal``, creating the rows a day's first posting needs, in one statement.
    The caller holds the accounts locked, so no two transactions add to one row at once.

    On PostgreSQL the rows travel as five arrays (``unnest``): one statement text whatever their
    number, prepared once per session; elsewhere as VALUES rows."""
    keys = sorted(totals)
    upsert = (
        "ON CONFLICT (day, account_id) DO UPDATE SET released = t.released + excluded.released, "
        "fees = t.fees + excluded.fees, releases_count = t.releases_count + excluded.releases_count"
    )
    columns = f"INSERT INTO {_DAY_TOTAL} AS t (account_id, day, released, fees, releases_count)"
    if connection.vendor == "postgresql":
        return (
            f"{columns} SELECT * FROM unnest(%s::bigint[], %s::date[], %s::bigint[], %s::bigint[], %s::bigint[]) "
            f"{upsert}",
            [
                sql.array_param([account for account, _ in keys]),
                sql.array_param([day for _, day in keys]),
                *(sql.array_param([totals[key][index] for key in keys]) for index in range(3)),
            ],
        )
    return (
        f"{columns} VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(keys))} {upsert}",
        [value for key in keys for value in (key[0], key[1].isoformat(), *totals[key])],
    )


def chain_heads_lock(chains: Sequence[int]) -> dict[int, tuple[int, str]]:
    """Lock the heads of ``chains`` in chain order: ``chain → (seq, hash)``; a chain's first
    entry opens its head at the genesis hash. Inside ``core.sql.writes_ahead`` the writes waiting
    go in front of the lock, in its round trip."""
    select = f"SELECT chain, seq, hash FROM {_HEAD} WHERE chain IN ({{}}) ORDER BY chain{_lock()}"
    heads = {chain: (seq, link) for chain, seq, link in sql.fetch(select.format(_placeholders(len(chains))), chains)}
    missing = [chain for chain in chains if chain not in heads]
    if missing:  # first entries on these chains
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {_HEAD} (chain, seq, hash) VALUES {', '.join(['(%s, 0, %s)'] * len(missing))} "
                "ON CONFLICT (chain) DO NOTHING",
                [value for chain in missing for value in (chain, GENESIS_HASH)],
            )
            cursor.execute(select.format(_placeholders(len(missing))), missing)
            heads.update({chain: (seq, link) for chain, seq, link in cursor.fetchall()})
    return heads


def chain_heads_move(heads: dict[int, tuple[int, str]]) -> sql.Statement:
    """Move each chain's head to its new ``(seq, hash)``."""
    chains = sorted(heads)
    if len(chains) == 1:
        chain = chains[0]
        return f"UPDATE {_HEAD} SET seq = %s, hash = %s WHERE chain = %s", [*heads[chain], chain]
    seqs = " ".join(["WHEN %s THEN CAST(%s AS bigint)"] * len(chains))  # typed when prepared
    hashes = " ".join(["WHEN %s THEN CAST(%s AS text)"] * len(chains))
    return (
        f"UPDATE {_HEAD} SET seq = CASE chain {seqs} END, hash = CASE chain {hashes} END "
        f"WHERE chain IN ({_placeholders(len(chains))})",
        [
            *(value for chain in chains for value in (chain, heads[chain][0])),
            *(value for chain in chains for value in (chain, heads[chain][1])),
            *chains,
        ],
    )


def _entries_insert_sql(count: int) -> str:
    row = f"({_placeholders(len(ENTRY_COLUMNS))})"
    return f"INSERT INTO {_ENTRY} ({', '.join(ENTRY_COLUMNS)}) VALUES {', '.join([row] * count)}"


_CREATED_AT = ENTRY_COLUMNS.index("created_at")


def entry_values(entry: JournalEntry, ops: Any = None) -> list:
    """The values of ``ENTRY_COLUMNS`` for a new entry (``ops``: the connection's, looked up once
    by a caller writing thousands)."""
    values = [getattr(entry, column) for column in ENTRY_COLUMNS]
    values[_CREATED_AT] = (ops or connection.ops).adapt_datetimefield_value(entry.created_at)
    return values


def entry_write(entry: JournalEntry, legs: Sequence[tuple[int, int]]) -> sql.Statement:
    """One entry and its postings ``(account_id, amount)`` in one statement (PostgreSQL): the
    postings take the new entry's id from the INSERT before them (a data-modifying WITH); the
    statement returns that id."""
    values = ", ".join(["(%s::bigint, %s::bigint)"] * len(legs))  # typed when prepared
    return (
        f"WITH e AS ({_entries_insert_sql(1)} RETURNING id), "
        f"p AS (INSERT INTO {_POSTING} (entry_id, account_id, amount) "
        f"SELECT e.id, v.account_id, v.amount FROM e, (VALUES {values}) AS v (account_id, amount)) "
        "SELECT id FROM e",
        entry_values(entry) + [value for leg in legs for value in leg],
    )


def entries_insert(entries: Sequence[JournalEntry], postings: Sequence[Sequence[tuple[int, int]]]) -> None:
    """Write new entries with their postings (``(account_id, amount)`` per entry, in order) in
    multi-row INSERTs; each entry's ``id`` is set from the database."""
    if connection.vendor == "postgresql" and len(entries) > CASE_ROWS_MAX:
        _entries_insert_arrays(entries, postings)
        return
    ids: dict[str, int] = {}
    step = sql.rows_per_statement(len(ENTRY_COLUMNS))
    ops = connection.ops
    with connection.cursor() as cursor:
        for start in range(0, len(entries), step):
            chunk = entries[start : start + step]
            cursor.execute(
                f"{_entries_insert_sql(len(chunk))} RETURNING idempotency_key, id",
                [value for entry in chunk for value in entry_values(entry, ops)],
            )
            ids.update(cursor.fetchall())
        for entry in entries:
            entry.id = ids[entry.idempotency_key]
        rows = [(entry.id, *leg) for entry, legs in zip(entries, postings, strict=True) for leg in legs]
        step = sql.rows_per_statement(3)
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            cursor.execute(
                f"INSERT INTO {_POSTING} (entry_id, account_id, amount) "
                f"VALUES {', '.join(['(%s, %s, %s)'] * len(chunk))}",
                [value for row in chunk for value in row],
            )


def _array_types(model: type, columns: Sequence[str]) -> str:
    """``%s::type[]`` for each of ``columns`` (their fields' names), typed as the model's columns."""
    meta = model._meta
    return ", ".join(f"%s::{meta.get_field(column).db_type(connection)}[]" for column in columns)


def _entries_insert_arrays(entries: Sequence[JournalEntry], postings: Sequence[Sequence[tuple[int, int]]]) -> None:
    """``entries_insert`` on PostgreSQL for a large batch: each column's values as one array
    (``unnest``), two statements whatever the batch's size. A multi-row VALUES costs PostgreSQL
    twice as much to parse as the rows cost to write (a day's hundred thousand payouts)."""
    ops = connection.ops
    values = [entry_values(entry, ops) for entry in entries]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {_ENTRY} ({', '.join(ENTRY_COLUMNS)}) "
            f"SELECT * FROM unnest({_array_types(JournalEntry, ENTRY_COLUMNS)}) RETURNING idempotency_key, id",
            [sql.array_param([row[index] for row in values]) for index in range(len(ENTRY_COLUMNS))],
        )
        ids = dict(cursor.fetchall())
        for entry in entries:
            entry.id = ids[entry.idempotency_key]
        rows = [(entry.id, *leg) for entry, legs in zip(entries, postings, strict=True) for leg in legs]
        cursor.execute(
            f"INSERT INTO {_POSTING} (entry_id, account_id, amount) "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])",
            [sql.array_param([row[index] for row in rows]) for index in range(3)],
        )


JOURNAL_ROW_COLUMNS: tuple[str, ...] = ("id", "chain", "seq", "prev_hash", "hash", "code", "idempotency_key")
JOURNAL_ROW_COLUMNS += ("actor_id", "actor_label", "memo", "created_at")
ROWS_PER_FETCH = 10_000


def _stream(query: str, params: Sequence) -> Iterator[tuple]:
    """Rows of ``query`` a fetch at a time: a server-side cursor on PostgreSQL (inside the
    caller's transaction), so the journal never has to fit in memory.

    A cursor is planned for its first rows (``cursor_tuple_fraction``, 0.1): for the new entries
    of an incremental check that is a walk of the whole ``(chain, seq)`` index in order, sparing
    a sort but reading the history. Every row is read here, so the cursor is planned for all."""
    if connection.vendor == "postgresql":  # until the transaction ends: it only plans cursors
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL cursor_tuple_fraction = 1.0")
    with connection.chunked_cursor() as cursor:
        cursor.execute(query, params)
        while rows := cursor.fetchmany(ROWS_PER_FETCH):
            yield from rows


def _journal_where(
    *, after: Sequence[tuple[int, int]] | None, chain_range: tuple[int, int] | None, first_id: bool = True
) -> tuple[str, list, int | None]:
    """The ``WHERE`` of a verification's entries (``e``), its parameters and, for a caller that
    joins their postings (``first_id``), the id of the first of them when ``after`` is given (None:
    no entry); ``journal_rows`` says what the two keep."""
    where: list[str] = []
    params: list = []
    if after is not None:
        where.append("(" + " OR ".join(["(e.chain = %s AND e.seq > %s)"] * len(after)) + ")")
        params += [value for pair in after for value in pair]
    if chain_range is not None:
        where.append("e.chain >= %s AND e.chain < %s")
        params += list(chain_range)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    first = None
    if after is not None and first_id:
        # The new entries' postings lie at or after the first new entry's id: a range of the
        # postings' entry index, so a join reads the new postings only, not the history's.
        # ``id + 0``: not the primary key's MIN shortcut, which would walk the ids from the
        # oldest until one matches (the whole history), but the chains' index ranges.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MIN(e.id + 0) FROM {_ENTRY} e{condition}", params)
            first = cursor.fetchone()[0]
    return condition, params, first


def journal_rows(
    *, after: Sequence[tuple[int, int]] | None = None, chain_range: tuple[int, int] | None = None
) -> Iterator[tuple]:
    """Entries in chain order, each ``JOURNAL_ROW_COLUMNS`` then the list of its postings
    ``(account_id, amount)`` in posting order (empty for an entry without postings).

    ``after`` — ``(chain, seq)`` pairs — keeps only those chains' entries after ``seq`` (each an
    index range on the chain's ``(chain, seq)``: what an incremental check reads); ``chain_range``
    keeps the chains ``lo <= chain < hi`` (a slice of a full check).

    On PostgreSQL ``created_at`` comes as the canonical text of ``escrow.chain.canonical_time``
    (the hash's own form): no datetime to parse and format again for every entry."""
    if after is not None and not after:
        return iter(())
    condition, params, first = _journal_where(after=after, chain_range=chain_range)
    join, join_params = "p.entry_id = e.id", []
    if after is not None:
        if first is None:
            return iter(())
        join, join_params = f"{join} AND p.entry_id >= %s", [first]
    columns = [f"e.{column}" for column in JOURNAL_ROW_COLUMNS]
    if connection.vendor == "postgresql":
        columns[JOURNAL_ROW_COLUMNS.index("created_at")] = _CANONICAL_AT
    query = (
        f"SELECT {', '.join(columns)}, p.account_id, p.amount FROM {_ENTRY} e "
        f"LEFT JOIN {_POSTING} p ON {join}{condition} ORDER BY e.chain, e.seq, p.id"
    )
    return _grouped(_stream(query, [*join_params, *params]))


# ``escrow.chain.canonical_time`` in PostgreSQL.
_CANONICAL_AT = """to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
# ``escrow.chain.entry_hash``'s canonical JSON, built by PostgreSQL from an entry ``e`` and its legs
# ``p.legs`` (``[account,amount]`` in (account, amount) order, comma-separated). ``to_json`` of a
# text escapes exactly what ``json.encoder.encode_basestring`` does (quote, backslash, \b \f \n
# \r \t, other control characters as lower-case \u00xx; nothing else, as ``ensure_ascii=False``);
# ``tests/escrow/test_ledger_verify_in_database.py`` holds the two equal for any content.
_CANONICAL_HASH = (
    """encode(sha256(convert_to('{"actor":' || COALESCE(e.actor_id::text, 'null')"""
    """ || ',"actor_label":' || to_json(e.actor_label)::text"""
    f""" || ',"at":"' || {_CANONICAL_AT} || '","chain":' || e.chain"""
    """ || ',"code":' || to_json(e.code)::text || ',"key":' || to_json(e.idempotency_key)::text"""
    """ || ',"memo":' || to_json(e.memo)::text || ',"postings":[' || COALESCE(p.legs, '')"""
    """ || '],"prev":' || to_json(e.prev_hash)::text || ',"seq":' || e.seq || '}', 'UTF8')), 'hex')"""
)


def _verifying(cursor) -> None:
    """Settings of a verification's reads in PostgreSQL, until its transaction ends: no JIT (it
    compiled the hash expression for 2.4 s of a 6 s query), room to sort a day's links in memory."""
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SET LOCAL work_mem = '64MB'")


def journal_check_in_database(
    *, after: Sequence[tuple[int, int]] | None = None, chain_range: tuple[int, int] | None = None
) -> tuple[int, list[tuple], list[tuple]]:
    """What ``escrow.selectors`` walks ``journal_rows`` for, computed by PostgreSQL, for the same
    entries (``after``, ``chain_range``): the hashes recomputed there from each entry's content
    (``_CANONICAL_HASH``), the links and the balance of each entry.

    Returns ``(entries, suspects, links)``:

    - ``suspects``: ``(id, chain, seq, hash matches, postings, their sum)`` of every entry whose
      hash does not match its content or that does not balance (fewer than two postings, or a sum
      other than 0);
    - ``links``: ``(id, chain, seq, prev_hash, hash, previous seq, previous hash, last)`` of each
      chain's first entry here (previous seq None: it links to where the check started), its last
      (``last``), and every entry that does not follow the entry before it.

    Two reads, neither returning a row per entry: the hashes and balances (each entry's legs read by
    the postings' entry index), the links (a window over the narrow chain columns). The accounts'
    totals are ``posting_totals_in_database``'s."""
    if after is not None and not after:
        return 0, [], []
    condition, params, _ = _journal_where(after=after, chain_range=chain_range, first_id=False)
    with connection.cursor() as cursor:
        _verifying(cursor)
        cursor.execute(
            f"SELECT count(*), array_agg(ARRAY[id, chain, seq, ok::int, n, s]) "
            f"FILTER (WHERE NOT ok OR n < 2 OR s <> 0) FROM ("
            f"SELECT e.id, e.chain, e.seq, e.hash = {_CANONICAL_HASH} AS ok, "
            f"COALESCE(p.n, 0) AS n, COALESCE(p.s, 0) AS s FROM {_ENTRY} e LEFT JOIN LATERAL ("
            f"SELECT count(*) AS n, sum(p.amount) AS s, string_agg('[' || p.account_id || ',' || p.amount || ']', "
            f"',' ORDER BY p.account_id, p.amount) AS legs FROM {_POSTING} p WHERE p.entry_id = e.id"
            f") p ON true{condition}) x",
            params,
        )
        entries, suspects = cursor.fetchone()
        cursor.execute(
            f"SELECT id, chain, seq, prev_hash, hash, prev_seq, prev_link, next_seq IS NULL FROM ("
            f"SELECT e.id, e.chain, e.seq, e.prev_hash, e.hash, lag(e.seq) OVER w AS prev_seq, "
            f"lag(e.hash) OVER w AS prev_link, lead(e.seq) OVER w AS next_seq FROM {_ENTRY} e{condition} "
            f"WINDOW w AS (PARTITION BY e.chain ORDER BY e.seq)) x "
            f"WHERE prev_seq IS NULL OR next_seq IS NULL OR seq <> prev_seq + 1 OR prev_hash <> prev_link "
            f"ORDER BY chain, seq",
            params,
        )
        links = cursor.fetchall()
    return entries, [tuple(int(value) for value in row) for row in suspects or ()], links


def posting_totals_in_database(
    *, after: Sequence[tuple[int, int]] | None = None, chain_range: tuple[int, int] | None = None
) -> dict[int, int]:
    """The postings of ``journal_check_in_database``'s entries summed by account, in PostgreSQL:
    one aggregate, one row per account."""
    if after is not None and not after:
        return {}
    condition, params, first = _journal_where(after=after, chain_range=chain_range)
    if after is not None and first is None:
        return {}
    bound, bound_params = ("AND p.entry_id >= %s", [first]) if first is not None else ("", [])
    with connection.cursor() as cursor:
        _verifying(cursor)
        cursor.execute(
            f"SELECT p.account_id, sum(p.amount) FROM {_POSTING} p JOIN {_ENTRY} e ON e.id = p.entry_id "
            f"{bound} {condition} GROUP BY p.account_id",
            [*bound_params, *params],
        )
        return {account_id: int(total) for account_id, total in cursor.fetchall()}


def _grouped(rows: Iterator[tuple]) -> Iterator[tuple]:
    """Rows of one posting each (the entry's columns first) as rows of one entry each."""
    current: tuple | None = None
    postings: list[tuple[int, int]] = []
    for row in rows:
        if current is None or row[0] != current[0]:
            if current is not None:
                yield (*current, postings)
            current, postings = row[:-2], []
        if row[-2] is not None:
            postings.append((row[-2], row[-1]))
    if current is not None:
        yield (*current, postings)


def accounts_rows() -> Iterator[tuple]:
    """Every account's ``(id, kind, balance)``."""
    return _stream(f"SELECT id, kind, balance FROM {_ACCOUNT}", [])


_SLOTS = LedgerCheckpointTotals.TOTALS_PER_BLOCK


def _unpacked(blob: bytes | memoryview) -> array:
    totals = array("q")
    totals.frombytes(bytes(blob))
    if sys.byteorder == "big":  # stored little-endian
        totals.byteswap()
    return totals


def _packed(totals: array) -> bytes:
    if sys.byteorder == "big":
        totals = array("q", totals)
        totals.byteswap()
    return totals.tobytes()


def checkpoint_totals() -> dict[int, array]:
    """The checkpoint's account totals (``LedgerCheckpointTotals``): block number → its slots;
    account ``a``'s total is ``blocks[a // TOTALS_PER_BLOCK][a % TOTALS_PER_BLOCK]``, 0 for a block
    that is not there."""
    return {block: _unpacked(blob) for block, blob in LedgerCheckpointTotals.objects.values_list("block", "totals")}


def checkpoint_totals_set(*, totals: dict[int, int]) -> None:
    """Set each account's checkpoint total, in the caller's transaction: the blocks holding them
    are read, changed and written back whole (one ``INSERT ... ON CONFLICT`` per hundred blocks),
    so a million accounts cost about a thousand rows."""
    if not totals:
        return
    by_block: dict[int, list[tuple[int, int]]] = {}
    for account_id, total in totals.items():
        block, slot = divmod(account_id, _SLOTS)
        by_block.setdefault(block, []).append((slot, total))
    current = {
        block: _unpacked(blob)
        for block, blob in LedgerCheckpointTotals.objects.filter(block__in=list(by_block)).values_list(
            "block", "totals"
        )
    }
    rows = []
    for block, slots in by_block.items():
        values = current.get(block) or array("q", bytes(8 * _SLOTS))
        for slot, total in slots:
            values[slot] = total
        rows.append(LedgerCheckpointTotals(block=block, totals=_packed(values)))
    LedgerCheckpointTotals.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["block"], update_fields=["totals"], batch_size=100
    )


def snapshot_export() -> str | None:
    """Export this REPEATABLE READ transaction's snapshot for other sessions to read the same
    state (PostgreSQL; None elsewhere). Valid while this transaction stays open."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]


def snapshot_import(snapshot: str) -> None:
    """Make the transaction just begun a read-only REPEATABLE READ reading ``snapshot``."""
    with connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
