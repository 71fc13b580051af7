"""Benchmark: the ledger's verification over a long history: a full check from genesis (postings
per second, chains in parallel) and an incremental check of one day's entries on top of it
(seconds), at two history sizes, to show that the incremental check's cost follows the day, not
the history.

Run it with ``make bench`` or ``.venv/bin/python bench/verify.py`` (``--help`` for options); it
needs PostgreSQL and never runs under ``make test``. See bench/README.md for what it measures.

What runs, in order:

1. A database ``bench_verify_<pid>`` is created on ``--server`` and migrated.
2. ``--cards`` card escrow accounts and ``--merchants`` merchant settlement accounts; a purchase
   entry per card, then release entries (card → merchant, two postings each) until the history
   holds a quarter of ``--postings``. Every entry is hashed by ``escrow.chain.entry_hash`` on the
   chain of its first leg (``LEDGER_CHAIN_STRIPES``), as ``journal_post`` does, and written with
   COPY, the history without the journal's secondary indexes (rebuilt after it, as migrated);
   balances, chain heads and sequences follow. VACUUM ANALYZE and CHECKPOINT.
3. Timed: a full check (``ledger_check_run(full=True)``, chains in parallel) sets the
   checkpoint; ``--day-postings`` of one day's releases are appended; timed: the incremental check
   (``ledger_check_run()``) and one with nothing new (what every check pays: one pass over the
   accounts).
4. The history grows to ``--postings`` (plus the days); the same three timings again, and a full
   check on one connection (``ledger_verify(full=True, workers=1)``) beside the parallel one.
5. Checks: every check passed, the incremental ones read from the checkpoint and counted every
   entry. The database is dropped, whatever happened. Results go to bench/out/verify.json.

Targets: a full check at least 100,000 postings/s; an incremental check of one day at most 10 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402 (the repository on sys.path first)
    DEFAULT_SERVER,
    add_scale_argument,
    connect,
    django_env,
    machine,
    out_name,
    say,
    schema_of,
    secondary_indexes_drop,
    secondary_indexes_rebuild,
    throwaway_database,
    vacuum_and_checkpoint,
    verdict,
)

TARGET_FULL_POSTINGS_PER_S = 100_000
TARGET_INCREMENTAL_S = 10.0
BATCH_ENTRIES = 50_000
PRICE = 10_000_000  # fen on each card: releases never run it dry
START = datetime(2026, 1, 1, tzinfo=UTC)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postings", type=int, help="postings of history (default 4,000,000; 5,000,000 x --scale above 1)"
    )
    parser.add_argument("--day-postings", type=int, help="postings of one day's entries (default 200,000 x --scale)")
    parser.add_argument("--cards", type=int, help="card escrow accounts (default 100,000 x --scale)")
    parser.add_argument("--merchants", type=int, help="merchant accounts (default 10,000 x --scale)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200,000 postings, 20,000 a day")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"PostgreSQL server URL (default {DEFAULT_SERVER})")
    parser.add_argument(
        "--keep-database", action="store_true", help="keep the generated database after the run (to study it)"
    )
    add_scale_argument(parser)
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be at least 1")
    if args.quick:
        args.postings, args.day_postings, args.cards, args.merchants = 200_000, 20_000, 10_000, 1_000
    # Issue 20's 10x is of today's books, 5,000,000 postings (bench/risk.py's): --scale 10 is 50 M.
    args.postings = args.postings or (4_000_000 if args.scale == 1 else 5_000_000 * args.scale)
    args.day_postings = args.day_postings or 200_000 * args.scale
    args.cards = args.cards or 100_000 * args.scale
    args.merchants = args.merchants or 10_000 * args.scale
    if min(args.postings, args.day_postings, args.cards, args.merchants) <= 0:
        parser.error("sizes must be positive")
    if args.postings // 4 < 2 * args.cards:
        parser.error("--postings must hold at least eight postings per card (a purchase each in the first quarter)")
    return args


class Ledger:
    """The bench's journal, written with COPY: entry ids, chain heads and balance changes kept here."""

    def __init__(self, conn, *, cards: int, merchants: int) -> None:
        from django.conf import settings

        self.conn = conn
        self.stripes = settings.LEDGER_CHAIN_STRIPES
        with conn, conn.cursor() as cursor:
            cursor.execute("SELECT id FROM escrow_account WHERE kind = 'custody'")
            self.custody = cursor.fetchone()[0]
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM escrow_account")
            base = cursor.fetchone()[0] + 1
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM escrow_journalentry")
            self.next_entry = cursor.fetchone()[0] + 1
        self.cards = list(range(base, base + cards))
        self.merchants = list(range(base + cards, base + cards + merchants))
        rows = [(account, "card_escrow", f"bench card {account}") for account in self.cards]
        rows += [(account, "merchant_settlement", f"bench merchant {account}") for account in self.merchants]
        self._copy(
            "escrow_account (id, kind, name, balance, currency, created_at)",
            (f"{a}\t{kind}\t{name}\t0\tcny\t{START.isoformat()}\n" for a, kind, name in rows),
        )
        self.heads: dict[int, tuple[int, str]] = {}
        self.pending: dict[int, int] = {}  # balance changes not written yet (``flush``)
        self.released = 0
        self.moment = START

    def _copy(self, target: str, lines) -> None:
        buffer = io.StringIO("".join(lines))
        with self.conn, self.conn.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")  # the deferred balance triggers: the bench's
            cursor.copy_expert(f"COPY {target} FROM STDIN", buffer)  # entries balance by construction

    def post(self, entries: list[tuple[str, list[tuple[int, int]]]], step: timedelta) -> None:
        """Hash and write ``(code, legs)`` entries, ``step`` apart; their balance changes and the
        chains' heads are kept for ``flush``."""
        from escrow.chain import GENESIS_HASH, entry_hash

        entry_lines, posting_lines = [], []
        delta = self.pending
        for code, legs in entries:
            chain = legs[0][0] % self.stripes
            seq, prev = self.heads.get(chain, (0, GENESIS_HASH))
            self.moment += step
            key = f"bench:{code}:{self.next_entry}"
            link = entry_hash(
                chain=chain, seq=seq + 1, prev_hash=prev, code=code, idempotency_key=key, actor_id=None,
                actor_label="bench", memo="", created_at=self.moment, postings=legs,
            )  # fmt: skip
            entry_lines.append(
                f"{self.next_entry}\t{code}\t{key}\t\\N\tbench\t\t{self.moment.isoformat()}\t{chain}\t{seq + 1}"
                f"\t{prev}\t{link}\n"
            )
            for account, amount in legs:
                posting_lines.append(f"{self.next_entry}\t{account}\t{amount}\n")
                delta[account] = delta.get(account, 0) + amount
            self.heads[chain] = (seq + 1, link)
            self.next_entry += 1
        self._copy(
            "escrow_journalentry (id, code, idempotency_key, actor_id, actor_label, memo, created_at, chain, seq, "
            "prev_hash, hash)",
            entry_lines,
        )
        self._copy("escrow_posting (entry_id, account_id, amount)", posting_lines)

    def flush(self) -> None:
        """Write the balance changes of the entries posted since the last flush (one UPDATE, not
        one per batch: a million accounts updated again every batch bloated the accounts), the
        chains' heads and the entries' sequence."""
        balance = (f"{a}\t{amount if a == self.custody else -amount}\n" for a, amount in self.pending.items())
        with self.conn, self.conn.cursor() as cursor:
            cursor.execute("CREATE TEMP TABLE bench_delta (id bigint, amount bigint) ON COMMIT DROP")
            cursor.copy_expert("COPY bench_delta FROM STDIN", io.StringIO("".join(balance)))
            cursor.execute(
                "UPDATE escrow_account a SET balance = a.balance + d.amount FROM bench_delta d WHERE d.id = a.id"
            )
            heads = [(chain, seq, link) for chain, (seq, link) in self.heads.items()]
            cursor.executemany(
                "INSERT INTO escrow_chainhead (chain, seq, hash) VALUES (%s, %s, %s) "
                "ON CONFLICT (chain) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
                heads,
            )
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('escrow_journalentry', 'id'), "
                "(SELECT MAX(id) FROM escrow_journalentry))"
            )
        self.pending = {}

    def purchases(self) -> None:
        for lo in range(0, len(self.cards), BATCH_ENTRIES):
            batch = self.cards[lo : lo + BATCH_ENTRIES]
            self.post([("purchase", [(card, -PRICE), (self.custody, PRICE)]) for card in batch], timedelta(seconds=1))
        self.flush()

    def releases(self, postings: int, *, over: timedelta) -> None:
        """Releases of ``postings`` postings (two each), spread over ``over``."""
        count = postings // 2
        step = over / max(count, 1)
        cards, merchants = len(self.cards), len(self.merchants)
        done = 0
        while done < count:
            size = min(BATCH_ENTRIES, count - done)
            entries = []
            for n in range(self.released, self.released + size):
                card = self.cards[n * 7919 % cards]
                amount = 100 + n % 100
                entries.append(("release", [(card, amount), (self.merchants[card % merchants], -amount)]))
            self.post(entries, step)
            self.released += size
            done += size
        self.flush()


# The day's settlement, as merchants.services.settlement._merchant_totals sums it, by account (the
# bench's merchant accounts have no merchant rows): the release postings on merchant settlement
# accounts in the window, joined to their entries for the code and the date.
DAY_SETTLEMENT_SQL = """
SELECT p.account_id, SUM(-p.amount), COUNT(*)
FROM escrow_posting p
JOIN escrow_journalentry e ON e.id = p.entry_id
JOIN escrow_account a ON a.id = p.account_id AND a.kind = 'merchant_settlement'
WHERE e.code IN ('release', 'fee') AND e.created_at > %(since)s AND e.created_at <= %(cutoff)s
GROUP BY p.account_id
"""
# The same sum with the bound the incremental check puts on its join: the window's postings lie at
# or after the first id of the window's entries (the journal is append-only), found first, so that
# the planner can read a range of the postings' entry index instead of every posting.
FIRST_ENTRY_SQL = (
    "SELECT MIN(id + 0) FROM escrow_journalentry WHERE created_at > %(since)s AND created_at <= %(cutoff)s"
)
DAY_SETTLEMENT_BOUNDED_SQL = DAY_SETTLEMENT_SQL.replace(
    "GROUP BY p.account_id", "AND p.entry_id >= %(first)s\nGROUP BY p.account_id"
)
PROBE_RUNS = 3
PROBE_ACCOUNTS = 20


def history_probe(ledger: Ledger, conn, *, since: datetime, cutoff: datetime) -> dict:
    """What the readers that matter pay at this history, for the partitioning question (README):
    the day's settlement sum (median of ``PROBE_RUNS``, with its plan) and the statements of
    ``PROBE_ACCOUNTS`` cards and merchants (``escrow.selectors.account_entries``, median of one
    call each). The day and the accounts' sizes are the same at every history size."""
    from django.db import connections

    from escrow.selectors import account_entries

    params = {"since": since, "cutoff": cutoff}
    with conn, conn.cursor() as cursor:
        seconds = []
        for _ in range(PROBE_RUNS):
            started = time.perf_counter()
            cursor.execute(DAY_SETTLEMENT_SQL, params)
            rows = cursor.fetchall()
            seconds.append(time.perf_counter() - started)
        cursor.execute("EXPLAIN (COSTS OFF) " + DAY_SETTLEMENT_SQL, params)
        plan = [line for (line,) in cursor.fetchall()]
    probe: dict = {
        "day_settlement": {
            "median_s": round(statistics.median(seconds), 4),
            "runs_s": [round(x, 4) for x in seconds],
            "accounts": len(rows),
            "postings": sum(count for _, _, count in rows),
            "plan": plan,
        }
    }
    with conn, conn.cursor() as cursor:
        seconds = []
        for _ in range(PROBE_RUNS):
            started = time.perf_counter()
            cursor.execute(FIRST_ENTRY_SQL, params)
            bounded = {**params, "first": cursor.fetchone()[0]}
            cursor.execute(DAY_SETTLEMENT_BOUNDED_SQL, bounded)
            same = sorted(cursor.fetchall()) == sorted(rows)
            seconds.append(time.perf_counter() - started)
        cursor.execute("EXPLAIN (COSTS OFF) " + DAY_SETTLEMENT_BOUNDED_SQL, bounded)
        probe["day_settlement_bounded"] = {
            "median_s": round(statistics.median(seconds), 4),
            "runs_s": [round(x, 4) for x in seconds],
            "same_sums": same,
            "plan": [line for (line,) in cursor.fetchall()],
        }
    connections.close_all()
    for kind, accounts in (("card", ledger.cards), ("merchant", ledger.merchants)):
        step = max(1, len(accounts) // PROBE_ACCOUNTS)
        sample = accounts[::step][:PROBE_ACCOUNTS]
        seconds, lines = [], []
        for account in sample:
            started = time.perf_counter()
            lines.append(len(account_entries(account_id=account)))
            seconds.append(time.perf_counter() - started)
        probe[f"{kind}_statement"] = {
            "median_s": round(statistics.median(seconds), 4),
            "max_s": round(max(seconds), 4),
            "accounts": len(sample),
            "median_lines": statistics.median(lines),
        }
    d, c, m = probe["day_settlement"], probe["card_statement"], probe["merchant_statement"]
    say(
        f"  with the entry-id bound {probe['day_settlement_bounded']['median_s']:.3f} s; "
        f"the day's settlement sum {d['median_s']:.3f} s ({d['postings']:,} postings, {d['accounts']:,} accounts); "
        f"a card's statement {c['median_s'] * 1000:.1f} ms ({c['median_lines']:.0f} lines), a merchant's "
        f"{m['median_s'] * 1000:.1f} ms ({m['median_lines']:.0f} lines)"
    )
    return probe


def timed(what: str, run):
    started = time.perf_counter()
    outcome = run()
    seconds = time.perf_counter() - started
    say(f"  {what}: {seconds:.2f} s")
    return outcome, seconds


def postings_count(conn) -> int:
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM escrow_posting")
        return cursor.fetchone()[0]


HISTORY_TABLES = ("escrow_journalentry", "escrow_posting")


def round_of(
    ledger: Ledger, conn, *, history_to: int, day_postings: int, one_connection: bool, purchases: bool = False
) -> dict:
    """Grow the history to ``history_to`` postings (first a purchase a card with ``purchases``),
    then: full check, a day, incremental checks."""
    from django.db import connections

    from escrow.selectors import FULL_CHECK_WORKERS, ledger_verify
    from escrow.services import ledger_check_run

    timings: dict[str, float] = {}
    # The history is written without the journal's secondary indexes (maintained at random
    # places, they held the 10x load to 8,700 entries/s), rebuilt after it as migrated; the day's
    # entries below are written with every index in place.
    schema = schema_of(conn, HISTORY_TABLES)
    rebuild = secondary_indexes_drop(conn, HISTORY_TABLES)
    say(f"  {len(rebuild)} secondary indexes of {', '.join(HISTORY_TABLES)} dropped for the history")
    started = time.perf_counter()
    if purchases:
        say(f"{len(ledger.cards):,} purchases, one a card")
        ledger.purchases()
    grow = history_to - postings_count(conn)
    say(f"history: {grow:,} more postings of releases")
    ledger.releases(grow, over=timedelta(days=300))
    say(f"  written in {time.perf_counter() - started:.0f} s")
    with conn, conn.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
    secondary_indexes_rebuild(conn, rebuild, timings)
    with conn, conn.cursor() as cursor:
        cursor.execute("RESET maintenance_work_mem")
    if schema_of(conn, HISTORY_TABLES) != schema:
        raise SystemExit("the rebuilt indexes and constraints differ from the migrated schema")
    vacuum_and_checkpoint(conn, timings)
    history = postings_count(conn)
    result: dict = {"history_postings": history}
    connections.close_all()
    full, seconds = timed(
        f"full check, {FULL_CHECK_WORKERS} threads, {history:,} postings", lambda: ledger_check_run(full=True)
    )
    result["full"] = {"ok": full.ok, "full": full.full, "entries": full.entries, "seconds": round(seconds, 3)}
    result["full"]["postings_per_s"] = round(history / seconds)
    if one_connection:
        single, seconds = timed("full check, one connection", lambda: ledger_verify(full=True, workers=1))
        result["full_one_connection"] = {"ok": not single["problems"], "seconds": round(seconds, 3)}
        result["full_one_connection"]["postings_per_s"] = round(history / seconds)
    say(f"one day: {day_postings:,} postings of releases")
    day_since = ledger.moment
    ledger.releases(day_postings, over=timedelta(days=1))
    with conn, conn.cursor() as cursor:
        cursor.execute("ANALYZE escrow_journalentry")
        cursor.execute("ANALYZE escrow_posting")
    say("the readers that matter, at this history")
    result["probe"] = history_probe(ledger, conn, since=day_since, cutoff=ledger.moment)
    connections.close_all()
    incremental, seconds = timed(f"incremental check of the day, {day_postings:,} postings", ledger_check_run)
    result["incremental_day"] = {
        "ok": incremental.ok,
        "full": incremental.full,
        "entries": incremental.entries,
        "seconds": round(seconds, 3),
        "postings": day_postings,
    }
    idle, seconds = timed("incremental check, nothing new", ledger_check_run)
    result["incremental_nothing_new"] = {"ok": idle.ok, "full": idle.full, "seconds": round(seconds, 3)}
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM escrow_journalentry")
        result["entries_now"] = cursor.fetchone()[0]
    return result


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    python = sys.executable
    if python.startswith(f"{REPO}{os.sep}"):
        python = os.path.relpath(python, REPO)
    command = shlex.join([python, "bench/verify.py", *argv])
    started_at = datetime.now(UTC)
    host = machine(args.server)
    say(f"command: {command}")
    say(f"machine: {host['nproc']} CPUs ({host['cpu']}), PostgreSQL {host['postgresql']}, Python {host['python']}")
    with throwaway_database(args.server, f"bench_verify_{os.getpid()}", keep=args.keep_database) as url:
        env = django_env(url, secrets.token_urlsafe(32), broker="memory://")
        os.environ.update(env)
        os.environ.pop("LEDGER_CHAIN_STRIPES", None)
        import django

        django.setup()
        from django.core.management import call_command

        say("migrating")
        call_command("migrate", interactive=False, verbosity=0)
        conn = connect(url)
        try:
            say(f"{args.cards:,} cards and {args.merchants:,} merchants")
            ledger = Ledger(conn, cards=args.cards, merchants=args.merchants)
            rounds = [
                round_of(
                    ledger,
                    conn,
                    history_to=args.postings // 4,
                    day_postings=args.day_postings,
                    one_connection=False,
                    purchases=True,
                ),
                round_of(
                    ledger,
                    conn,
                    history_to=args.postings,
                    day_postings=args.day_postings,
                    one_connection=args.scale == 1,  # a scaled run spares the second full check's minutes
                ),
            ]
            with conn, conn.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_size_pretty(pg_total_relation_size('escrow_posting')), "
                    "pg_size_pretty(pg_total_relation_size('escrow_journalentry'))"
                )
                posting_size, entry_size = cursor.fetchone()
        finally:
            conn.close()
    large = rounds[-1]
    checks_ok = all(
        r["full"]["ok"] and r["full"]["full"] and r["incremental_day"]["ok"] and not r["incremental_day"]["full"]
        and r["incremental_day"]["entries"] == r["entries_now"] and r["incremental_nothing_new"]["ok"]
        and not r["incremental_nothing_new"]["full"]
        for r in rounds
    ) and large.get("full_one_connection", {"ok": True})["ok"]  # fmt: skip
    full_rate = large["full"]["postings_per_s"]
    day_s = max(r["incremental_day"]["seconds"] for r in rounds)
    report = {
        "command": command,
        "started_at": started_at.isoformat(),
        "machine": host,
        "quick": args.quick,
        "parameters": {
            "postings": args.postings,
            "day_postings": args.day_postings,
            "cards": args.cards,
            "merchants": args.merchants,
            "scale": args.scale,
        },
        "sizes": {"escrow_posting": posting_size, "escrow_journalentry": entry_size},
        "rounds": rounds,
        "checks_ok": checks_ok,
        "headline": [
            {
                "figure": f"full ledger check from genesis, {large['history_postings']:,} postings, chains in parallel",
                "value": full_rate,
                "unit": "postings/s",
                **(
                    {"baseline": "one connection", "baseline_value": large["full_one_connection"]["postings_per_s"]}
                    if "full_one_connection" in large
                    else {}
                ),
                "target": {"on": "value", "op": ">=", "limit": TARGET_FULL_POSTINGS_PER_S},
            },
            {
                "figure": f"incremental check of one day ({args.day_postings:,} postings), slowest of "
                f"{rounds[0]['history_postings']:,} and {large['history_postings']:,} postings of history",
                "value": day_s,
                "unit": "s",
                "target": {"on": "value", "op": "<=", "limit": TARGET_INCREMENTAL_S},
            },
        ],
    }
    print()
    for r in rounds:
        print(f"history {r['history_postings']:,} postings:")
        print(
            f"  full check      {r['full']['seconds']:8.2f} s  {r['full']['postings_per_s']:>10,} postings/s"
            + (
                f"  (one connection: {r['full_one_connection']['seconds']:.2f} s, "
                f"{r['full_one_connection']['postings_per_s']:,} postings/s)"
                if "full_one_connection" in r
                else ""
            )
        )
        print(
            f"  one day         {r['incremental_day']['seconds']:8.2f} s  "
            f"({r['incremental_day']['postings']:,} postings)"
        )
        print(f"  nothing new     {r['incremental_nothing_new']['seconds']:8.2f} s")
        d, c, m = r["probe"]["day_settlement"], r["probe"]["card_statement"], r["probe"]["merchant_statement"]
        print(f"  day's settlement sum {d['median_s']:8.3f} s  ({d['postings']:,} postings)")
        b = r["probe"]["day_settlement_bounded"]
        print(f"    with the entry-id bound {b['median_s']:8.3f} s  (same sums: {b['same_sums']})")
        for label, q in (("card statement ", c), ("merchant stmt  ", m)):
            print(
                f"  {label} {q['median_s'] * 1000:8.1f} ms ({q['median_lines']:.0f} lines, "
                f"max {q['max_s'] * 1000:.1f} ms)"
            )
    print(
        f"full check: {full_rate:,} postings/s, target >= {TARGET_FULL_POSTINGS_PER_S:,}: "
        f"{verdict(full_rate >= TARGET_FULL_POSTINGS_PER_S)}"
    )
    print(
        f"one day incremental: {day_s:.2f} s, target <= {TARGET_INCREMENTAL_S:.0f} s: "
        f"{verdict(day_s <= TARGET_INCREMENTAL_S)}"
    )
    if args.quick:
        print("(--quick: a smaller run; the targets are set for the defaults)")
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / out_name("verify", args.scale)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"results: {out.relative_to(REPO)}")
    if not checks_ok:
        print("FAIL: a check did not pass or did not read from its checkpoint", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
