"""Benchmark: the ledger's release transaction against pgbench running the same work in plain SQL.

Run it with ``make bench`` or ``.venv/bin/python bench/ledger.py`` (``--help`` for options); it needs
PostgreSQL and ``pgbench`` and never runs under ``make test``. See bench/README.md for what it
measures and a recorded run.

What runs, in order:

1. A database ``bench_ledger_<pid>`` is created on ``--server`` and migrated. ``--cards`` card
   escrow accounts and ``--merchants`` merchant settlement accounts are opened with ``account_open``
   (ids contiguous; card ``i`` belongs to merchant ``i % merchants``), and every card is funded
   with a ``purchase`` entry through ``ledger_transfer``, so the ledger stays verifiable.
2. That database is copied (``CREATE DATABASE ... TEMPLATE``) to ``bench_ledger_<pid>_pgbench``.
   pgbench writes there: its entries carry placeholder hashes on chains 4000+, which would
   (rightly) fail the hash-chain check, so they must not share a journal with ours.
3. ``--rounds`` times (default 3), for each client count: ours, then pgbench, each for ``--seconds``.
   Ours: that many worker *processes* (spawned, each with its own connection) call
   ``ledger_transfer(code="release", card escrow -> its merchant settlement, amount=1)`` with a
   unique idempotency key on random cards; ops/s = releases committed / wall time, counted after
   a barrier releases all workers at once (each first does a few warm-up releases, untimed).
   pgbench: ``pgbench -n -M simple`` with the same client count (``-j`` = ``-c``) running the
   plain-SQL transaction (lock the card row, update two balances, insert the entry with its unique
   idempotency key, insert its two postings) on the copy; its tps excludes connection time.
   At the top client count, ours runs a third time with ``LEDGER_CHAIN_STRIPES=1`` (one global
   hash chain), to compare with the default stripes: the cost of the chain as a global lock.
   The table reports the median of the rounds (the runs are short and the machine's disk and
   neighbours are noisy); each run's figures are in the JSON.
4. Alongside: CPU per operation (workers' own CPU time, their PostgreSQL backends' CPU time from
   /proc, pgbench's client CPU time) and how busy the whole machine was, to show where time goes.
5. ``ledger_verify()`` on our database must pass (exit 1 otherwise); on the pgbench copy the
   balance checks must pass too (its chains are fake by construction).
6. Both databases are dropped, whatever happened. Results go to bench/out/ledger.json.

Django runs with DEBUG off and a throwaway secret key, as in production: with DEBUG on every
cursor logs its SQL, which is a cost production never pays.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import resource
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"
TARGETS = {2: 0.5, 8: 0.35}  # minimum ours / pgbench ratio per client count
FUND = 10_000_000  # fen put on each card; releases take 1 fen each
WARMUP_OPS = 20  # releases per worker before the clock starts (connection, caches)
PGBENCH_CHAIN_BASE = 4000  # pgbench's entries use chains no service uses
START_TIMEOUT = 300  # seconds to wait for the workers to be ready
VERIFY_KEYS = ("balanced", "chain_ok", "custody_matches", "accounts_match")

PGBENCH_SCRIPT = r"""
\set card random(:card_lo, :card_hi)
\set merchant :merchant_lo + (:card - :card_lo) % :merchants
BEGIN;
SELECT id, kind, balance FROM escrow_account WHERE id = :card FOR UPDATE;
UPDATE escrow_account SET balance = balance - 1 WHERE id = :card;
UPDATE escrow_account SET balance = balance + 1 WHERE id = :merchant;
WITH n AS (SELECT nextval('bench_pgbench_seq') AS v),
e AS (
    INSERT INTO escrow_journalentry
        (code, idempotency_key, actor_id, actor_label, memo, created_at, chain, seq, prev_hash, hash)
    SELECT 'release', 'pgb:' || :client_id || ':' || n.v, NULL, '', '', now(),
        {chain_base} + :client_id, n.v, repeat('0', 64), repeat('0', 64)
    FROM n
    RETURNING id
)
INSERT INTO escrow_posting (entry_id, account_id, amount)
SELECT id, :card, 1 FROM e UNION ALL SELECT id, :merchant, -1 FROM e;
END;
"""
PGBENCH_STATEMENTS = 4  # in the script above, between BEGIN and END: SELECT, UPDATE, UPDATE, WITH ... INSERT


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def django_env(url: str, secret_key: str, stripes: int | None = None) -> dict[str, str]:
    env = {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secret_key,
    }
    if stripes is not None:
        env["LEDGER_CHAIN_STRIPES"] = str(stripes)
    return env


CLK_TCK = os.sysconf("SC_CLK_TCK")


def system_cpu() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / CLK_TCK, sum(fields) / CLK_TCK


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid``, from /proc (Linux)."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(after_name[11]) + int(after_name[12])) / CLK_TCK  # fields 14 and 15: utime, stime


def busy_between(before: tuple[float, float] | None, after: tuple[float, float] | None) -> dict:
    """The machine's CPU use between two ``system_cpu()`` readings: seconds busy and share of capacity."""
    if before is None or after is None or after[1] <= before[1]:
        return {"busy_cpu_s": None, "busy_share": None}
    busy = after[0] - before[0]
    capacity = after[1] - before[1]
    return {"busy_cpu_s": round(busy, 3), "capacity_cpu_s": round(capacity, 3), "busy_share": round(busy / capacity, 3)}


def unattributed_share(run: dict, attributed_cpu_s: float | None) -> float | None:
    """The share of the machine busy with something other than the measured processes during a run:
    PostgreSQL's background writers, the kernel, and any neighbour that skews the figures."""
    if attributed_cpu_s is None or run.get("busy_cpu_s") is None:
        return None
    return round((run["busy_cpu_s"] - attributed_cpu_s) / run["capacity_cpu_s"], 3)


def admin(server: str, sql: str) -> None:
    """Run one statement on the server's maintenance database, outside a transaction."""
    import psycopg2

    conn = psycopg2.connect(database_url(server, "postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def machine(server: str) -> dict[str, object]:
    import psycopg2

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    conn = psycopg2.connect(database_url(server, "postgres"))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
    finally:
        conn.close()
    pgbench = subprocess.run(["pgbench", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "postgresql": pg_version,
        "pgbench": pgbench,
        "python": sys.version.split()[0],
        "loadavg_at_start": os.getloadavg()[0],  # other work on the machine skews every figure
    }


# --- Our service layer, in worker processes -----------------------------------------------------


def _release_worker(spec: dict, index: int, barrier, results) -> None:
    """One client: release 1 fen from random cards until the run's time is up."""
    os.environ.update(spec["env"])
    import django

    django.setup()
    from django.conf import settings
    from django.db import DatabaseError, connections

    from escrow.services import ledger_transfer

    connections.close_all()  # never share a connection with the parent, whatever the start method
    rng = random.Random(f"{spec['label']}:{index}")
    card_lo, card_hi = spec["card_lo"], spec["card_hi"]
    merchant_lo, merchants = spec["merchant_lo"], spec["merchants"]
    prefix = f"bench:{spec['label']}:{index}"

    def release(n: int) -> None:
        card = rng.randint(card_lo, card_hi)
        ledger_transfer(
            code="release",
            debit_account_id=card,
            credit_account_id=merchant_lo + (card - card_lo) % merchants,
            amount=1,
            idempotency_key=f"{prefix}:{n}",
        )

    n = 0
    for _ in range(WARMUP_OPS):
        release(n)
        n += 1
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    barrier.wait(timeout=START_TIMEOUT)
    ops = errors = 0
    error_kinds: dict[str, int] = {}
    backend_cpu = process_cpu(backend_pid)
    python_cpu = time.process_time()
    start = time.monotonic()
    deadline = start + spec["seconds"]
    while time.monotonic() < deadline:
        try:
            release(n)
            ops += 1
        except DatabaseError as exc:  # e.g. a deadlock or serialization failure: counted, not hidden
            errors += 1
            error_kinds[type(exc).__name__] = error_kinds.get(type(exc).__name__, 0) + 1
        n += 1
    end = time.monotonic()
    python_cpu = time.process_time() - python_cpu
    backend_after = process_cpu(backend_pid)
    backend_cpu = None if backend_cpu is None or backend_after is None else backend_after - backend_cpu
    connections.close_all()
    results.put(
        {
            "index": index,
            "ops": ops,
            "errors": errors,
            "error_kinds": error_kinds,
            "start": start,
            "end": end,
            "stripes": settings.LEDGER_CHAIN_STRIPES,
            "python_cpu_s": python_cpu,
            "backend_cpu_s": backend_cpu,
        }
    )


def run_ours(*, label: str, clients: int, seconds: int, layout: dict, env: dict[str, str]) -> dict:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    results = ctx.Queue()
    spec = {"label": label, "seconds": seconds, "env": env, **layout}
    workers = [ctx.Process(target=_release_worker, args=(spec, i, barrier, results)) for i in range(clients)]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(timeout=START_TIMEOUT)
        cpu_before = system_cpu()
        rows = [results.get(timeout=seconds + START_TIMEOUT) for _ in workers]
        cpu_after = system_cpu()
        for worker in workers:
            worker.join(timeout=60)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()
    bad = [worker.exitcode for worker in workers if worker.exitcode != 0]
    if bad:
        raise RuntimeError(f"{len(bad)} worker(s) failed (exit codes {bad})")
    ops = sum(row["ops"] for row in rows)
    elapsed = max(row["end"] for row in rows) - min(row["start"] for row in rows)
    errors = sum(row["errors"] for row in rows)
    kinds: dict[str, int] = {}
    for row in rows:
        for kind, count in row["error_kinds"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    stripes = sorted({row["stripes"] for row in rows})
    python_cpu = sum(row["python_cpu_s"] for row in rows)
    backends = [row["backend_cpu_s"] for row in rows]
    backend_cpu = None if None in backends else sum(backends)
    busy = busy_between(cpu_before, cpu_after)
    return {
        "clients": clients,
        "ops": ops,
        "errors": errors,
        "error_kinds": kinds,
        "elapsed_s": round(elapsed, 3),
        "ops_per_s": ops / elapsed,
        "per_worker_ops": [row["ops"] for row in sorted(rows, key=lambda row: row["index"])],
        "stripes": stripes[0] if len(stripes) == 1 else stripes,
        "python_cpu_us_per_op": 1e6 * python_cpu / ops if ops else None,
        "backend_cpu_us_per_op": 1e6 * backend_cpu / ops if ops and backend_cpu is not None else None,
        **busy,
        "unattributed_share": unattributed_share(busy, None if backend_cpu is None else python_cpu + backend_cpu),
    }


# --- pgbench --------------------------------------------------------------------------------------

_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([0-9.]+) ms", re.MULTILINE)


def run_pgbench(*, server: str, dbname: str, script: Path, clients: int, seconds: int, layout: dict) -> dict:
    parts = urlsplit(server)
    command = ["pgbench", "-n", "-M", "simple", "-f", str(script), "-c", str(clients), "-j", str(clients)]
    command += ["-T", str(seconds)]
    for name in ("card_lo", "card_hi", "merchant_lo", "merchants"):
        command += ["-D", f"{name}={layout[name]}"]
    command += ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    if parts.username:
        command += ["-U", unquote(parts.username)]
    command.append(dbname)
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = unquote(parts.password)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = system_cpu()
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
        try:
            backend_rate = _pgbench_backend_cpu_rate(server, dbname, process, clients)
            returncode = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        elapsed = time.monotonic() - started
        out.seek(0)
        output = out.read()
    cpu_after = system_cpu()
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    tps = _TPS.search(output)
    if returncode != 0 or tps is None:
        raise RuntimeError(f"pgbench failed (exit {returncode}):\n{output}")
    processed = _PROCESSED.search(output)
    failed = _FAILED.search(output)
    latency = _LATENCY.search(output)
    transactions = int(processed.group(1)) if processed else None
    rate = float(tps.group(1))
    busy = busy_between(cpu_before, cpu_after)
    attributed = None if backend_rate is None else client_cpu + backend_rate * elapsed
    return {
        "clients": clients,
        "tps": rate,
        "transactions": transactions,
        "failed": int(failed.group(1)) if failed else None,
        "latency_ms": float(latency.group(1)) if latency else None,
        "client_cpu_us_per_op": 1e6 * client_cpu / transactions if transactions else None,
        "backend_cpu_us_per_op": None if backend_rate is None else 1e6 * backend_rate / rate,
        **busy,
        "unattributed_share": unattributed_share(busy, attributed),
        "command": shlex.join(["pgbench", *command[1:]]),
    }


def _pgbench_backend_cpu_rate(server: str, dbname: str, process: subprocess.Popen, clients: int) -> float | None:
    """CPU seconds per second that pgbench's PostgreSQL backends use, sampled from /proc while it runs.

    The backends are found in pg_stat_activity once pgbench has connected; the window runs from
    half a second later to the last sample before the first backend exits.
    """
    import psycopg2

    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pgbench'"
    conn = psycopg2.connect(database_url(server, dbname))
    conn.autocommit = True
    try:
        pids: list[int] = []
        give_up = time.monotonic() + 30
        while process.poll() is None and len(pids) < clients and time.monotonic() < give_up:
            time.sleep(0.05)
            with conn.cursor() as cursor:
                cursor.execute(query)
                pids = [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()
    if len(pids) < clients:
        return None
    time.sleep(0.5)

    def sample() -> tuple[float, float] | None:
        values = [process_cpu(pid) for pid in pids]
        return None if None in values else (time.monotonic(), sum(values))

    first = last = sample()
    while first is not None and process.poll() is None:
        time.sleep(0.2)
        now = sample()
        if now is None:
            break
        last = now
    if first is None or last is None or last[0] - first[0] < 1:
        return None
    return (last[1] - first[1]) / (last[0] - first[0])


def verify_pgbench_copy(env: dict[str, str], results) -> None:
    """Child process: ledger_verify() on the pgbench database."""
    os.environ.update(env)
    import django

    django.setup()
    from escrow.selectors import ledger_verify

    outcome = dict(ledger_verify())
    outcome["problems"] = len(outcome["problems"])
    results.put(outcome)


def verify_in_child(env: dict[str, str]) -> dict:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    process = ctx.Process(target=verify_pgbench_copy, args=(env, results))
    process.start()
    try:
        outcome = results.get(timeout=1800)
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.terminate()
            process.join()
    return outcome


# --- The run --------------------------------------------------------------------------------------


def setup_ledger(cards: int, merchants: int) -> dict:
    from django.db import transaction

    from escrow.models import Account
    from escrow.services import account_open, ledger_transfer

    with transaction.atomic():
        card_ids = [account_open(kind=Account.Kind.CARD_ESCROW, name=f"bench card {i}").pk for i in range(cards)]
        merchant_ids = [
            account_open(kind=Account.Kind.MERCHANT_SETTLEMENT, name=f"bench merchant {i}").pk for i in range(merchants)
        ]
    for ids, what in ((card_ids, "card"), (merchant_ids, "merchant")):
        if ids != list(range(ids[0], ids[0] + len(ids))):
            raise RuntimeError(f"{what} account ids are not contiguous; the pgbench script needs them to be")
    custody = Account.objects.get(kind=Account.Kind.CUSTODY, city_wide=True)  # opened by migration 0002
    for card_id in card_ids:
        ledger_transfer(
            code="purchase",
            debit_account_id=custody.pk,
            credit_account_id=card_id,
            amount=FUND,
            idempotency_key=f"bench:fund:{card_id}",
        )
    return {
        "card_lo": card_ids[0],
        "card_hi": card_ids[-1],
        "merchant_lo": merchant_ids[0],
        "merchants": merchants,
    }


def statements_per_release(layout: dict) -> list[str]:
    """The SQL statements the service sends for one release, BEGIN and COMMIT left out.

    The second of two releases on one card is counted: the first on a chain also creates its head.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from escrow.services import ledger_transfer

    for attempt in range(2):
        with CaptureQueriesContext(connection) as queries:
            ledger_transfer(
                code="release",
                debit_account_id=layout["card_lo"],
                credit_account_id=layout["merchant_lo"],
                amount=1,
                idempotency_key=f"bench:probe:{attempt}",
            )
    sql = [query["sql"] for query in queries.captured_queries]
    return [" ".join(text.split()[:4]) for text in sql if text.strip().upper() not in ("BEGIN", "COMMIT")]


def median(values: list[float]) -> float:
    return statistics.median(values)


def summarise(clients: int, ours: list[dict], pgbench: list[dict]) -> dict:
    """One table row: the medians over the rounds and their ratio, judged against the target."""
    ours_rate = median([run["ops_per_s"] for run in ours])
    pgbench_rate = median([run["tps"] for run in pgbench])
    ratio = ours_rate / pgbench_rate
    target = TARGETS.get(clients)
    verdict = "-" if target is None else ("PASS" if ratio >= target else "MISS")

    def middle(runs: list[dict], key: str) -> float | None:
        values = [run[key] for run in runs if run.get(key) is not None]
        return median(values) if values else None

    return {
        "clients": clients,
        "ours": ours_rate,
        "pgbench": pgbench_rate,
        "ratio": ratio,
        "target": target,
        "verdict": verdict,
        "ours_runs": [run["ops_per_s"] for run in ours],
        "pgbench_runs": [run["tps"] for run in pgbench],
        "round_ratios": [a["ops_per_s"] / b["tps"] for a, b in zip(ours, pgbench, strict=True)],
        "ours_python_cpu_us_per_op": middle(ours, "python_cpu_us_per_op"),
        "ours_backend_cpu_us_per_op": middle(ours, "backend_cpu_us_per_op"),
        "ours_busy_share": middle(ours, "busy_share"),
        "ours_unattributed_share": middle(ours, "unattributed_share"),
        "pgbench_client_cpu_us_per_op": middle(pgbench, "client_cpu_us_per_op"),
        "pgbench_backend_cpu_us_per_op": middle(pgbench, "backend_cpu_us_per_op"),
        "pgbench_busy_share": middle(pgbench, "busy_share"),
        "pgbench_unattributed_share": middle(pgbench, "unattributed_share"),
    }


def fmt(value: float | None, spec: str) -> str:
    return "?" if value is None else format(value, spec)


def print_tables(rows: list[dict], rounds: int) -> None:
    spread = "  runs (ours / pgbench)" if rounds > 1 else ""
    print(f"{'clients':>7}  {'ours ops/s':>10}  {'pgbench tps':>11}  {'ratio':>5}  {'target':>6}  result{spread}")
    for row in rows:
        target = "-" if row["target"] is None else f">={row['target']:.2f}"
        runs = ""
        if rounds > 1:
            ours = " ".join(f"{value:.0f}" for value in row["ours_runs"])
            pgb = " ".join(f"{value:.0f}" for value in row["pgbench_runs"])
            runs = f"  {ours} / {pgb}"
        print(
            f"{row['clients']:>7}  {row['ours']:>10.1f}  {row['pgbench']:>11.1f}  {row['ratio']:>5.2f}  "
            f"{target:>6}  {row['verdict']:<6}{runs}"
        )
    print()
    print("CPU per operation in microseconds (client process / its PostgreSQL backend), and the machine's")
    print("busy share during the runs with the part not used by those processes (medians):")
    print(
        f"{'clients':>7}  {'ours client/backend':>19}  {'busy (other)':>12}  "
        f"{'pgbench client/backend':>22}  busy (other)"
    )
    for row in rows:
        ours = f"{fmt(row['ours_python_cpu_us_per_op'], '.0f')} / {fmt(row['ours_backend_cpu_us_per_op'], '.0f')}"
        pgb = f"{fmt(row['pgbench_client_cpu_us_per_op'], '.0f')} / {fmt(row['pgbench_backend_cpu_us_per_op'], '.0f')}"
        ours_busy = f"{fmt(row['ours_busy_share'], '.0%')} ({fmt(row['ours_unattributed_share'], '.0%')})"
        pgb_busy = f"{fmt(row['pgbench_busy_share'], '.0%')} ({fmt(row['pgbench_unattributed_share'], '.0%')})"
        print(f"{row['clients']:>7}  {ours:>19}  {ours_busy:>12}  {pgb:>22}  {pgb_busy:>12}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each run (default 10)")
    parser.add_argument("--clients", default="1,2,8", help="comma-separated client counts (default 1,2,8)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every run; medians are reported (default 3)")
    parser.add_argument("--cards", type=int, default=2000, help="card escrow accounts (default 2000)")
    parser.add_argument("--merchants", type=int, default=200, help="merchant settlement accounts (default 200)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"PostgreSQL server URL (default {DEFAULT_SERVER})")
    parser.add_argument("--quick", action="store_true", help="smoke run: one round of 3 s runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 3
        args.rounds = 1
    try:
        args.client_counts = sorted({int(c) for c in args.clients.split(",") if c.strip()})
    except ValueError:
        parser.error("--clients takes comma-separated integers, e.g. 1,2,8")
    if not args.client_counts or min(args.client_counts) < 1:
        parser.error("--clients needs positive counts")
    if args.seconds < 1 or args.rounds < 1 or args.cards < 1 or args.merchants < 1:
        parser.error("--seconds, --rounds, --cards and --merchants must be positive")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if shutil.which("pgbench") is None:
        print("pgbench is not on PATH", file=sys.stderr)
        return 2
    python = sys.executable
    if python.startswith(f"{REPO}{os.sep}"):
        python = os.path.relpath(python, REPO)
    command = shlex.join([python, "bench/ledger.py", *argv])
    started = datetime.now(UTC)
    host = machine(args.server)
    say(f"command: {command}")
    say(
        f"machine: {host['nproc']} CPUs ({host['cpu']}), PostgreSQL {host['postgresql']}, "
        f"{host['pgbench']}, Python {host['python']}, load average {host['loadavg_at_start']:.2f}"
    )

    db = f"bench_ledger_{os.getpid()}"
    pgb_db = f"{db}_pgbench"
    secret_key = secrets.token_urlsafe(32)
    os.environ.update(django_env(database_url(args.server, db), secret_key))
    os.environ.pop("LEDGER_CHAIN_STRIPES", None)  # the default stripes, whatever the caller's shell says
    created: list[str] = []
    try:
        say(f"creating database {db}")
        admin(args.server, f'CREATE DATABASE "{db}"')
        created.append(db)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections

        from escrow.selectors import ledger_ok, ledger_verify

        default_stripes = settings.LEDGER_CHAIN_STRIPES
        say("migrating")
        call_command("migrate", interactive=False, verbosity=0)
        say(f"opening {args.cards} card escrow and {args.merchants} merchant settlement accounts, funding each card")
        t0 = time.monotonic()
        layout = setup_ledger(args.cards, args.merchants)
        say(f"ledger ready in {time.monotonic() - t0:.1f} s: cards {layout['card_lo']}-{layout['card_hi']}")
        statements = statements_per_release(layout)
        say(f"one release through the service sends {len(statements)} SQL statements plus BEGIN and COMMIT:")
        for text in statements:
            say(f"  {text} ...")

        connections.close_all()  # the template must have no other session
        say(f"copying it to {pgb_db} for pgbench")
        admin(args.server, f'CREATE DATABASE "{pgb_db}" TEMPLATE "{db}"')
        created.append(pgb_db)
        import psycopg2

        conn = psycopg2.connect(database_url(args.server, pgb_db))
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute("CREATE SEQUENCE bench_pgbench_seq")
        finally:
            conn.close()

        top = args.client_counts[-1]
        ours_env = django_env(database_url(args.server, db), secret_key)
        one_stripe_env = django_env(database_url(args.server, db), secret_key, stripes=1)
        ours_runs: dict[int, list[dict]] = {clients: [] for clients in args.client_counts}
        pgbench_runs: dict[int, list[dict]] = {clients: [] for clients in args.client_counts}
        one_stripe_runs: list[dict] = []
        with tempfile.TemporaryDirectory(prefix="bench_ledger_") as tmp:
            script = Path(tmp) / "release.sql"
            script.write_text(PGBENCH_SCRIPT.replace("{chain_base}", str(PGBENCH_CHAIN_BASE)))
            for round_no in range(1, args.rounds + 1):
                for clients in args.client_counts:
                    tag = f"round {round_no}/{args.rounds}, {clients} client(s), {args.seconds} s"
                    say(f"ours, {tag}, {default_stripes} chain stripes (load average {os.getloadavg()[0]:.2f})")
                    ours = run_ours(
                        label=f"r{round_no}c{clients}",
                        clients=clients,
                        seconds=args.seconds,
                        layout=layout,
                        env=ours_env,
                    )
                    say(f"  {ours['ops']} releases in {ours['elapsed_s']} s = {ours['ops_per_s']:.1f} ops/s")
                    if ours["errors"]:
                        say(f"  {ours['errors']} failed releases: {ours['error_kinds']}")
                    ours_runs[clients].append(ours)
                    say(f"pgbench, {tag} (load average {os.getloadavg()[0]:.2f})")
                    pgb = run_pgbench(
                        server=args.server,
                        dbname=pgb_db,
                        script=script,
                        clients=clients,
                        seconds=args.seconds,
                        layout=layout,
                    )
                    say(f"  {pgb['transactions']} transactions, tps {pgb['tps']:.1f}")
                    pgbench_runs[clients].append(pgb)
                    if clients == top:
                        say(f"ours, {tag}, 1 chain stripe: one global hash chain")
                        single = run_ours(
                            label=f"r{round_no}c{top}s1",
                            clients=top,
                            seconds=args.seconds,
                            layout=layout,
                            env=one_stripe_env,
                        )
                        say(f"  {single['ops']} releases in {single['elapsed_s']} s = {single['ops_per_s']:.1f} ops/s")
                        one_stripe_runs.append(single)
            pgbench_script = script.read_text()

        rows = [summarise(clients, ours_runs[clients], pgbench_runs[clients]) for clients in args.client_counts]
        striped = median([run["ops_per_s"] for run in ours_runs[top]])
        single_rate = median([run["ops_per_s"] for run in one_stripe_runs])
        stripe_effect = {
            "clients": top,
            "default_stripes": default_stripes,
            "ops_per_s_default_stripes": striped,
            "ops_per_s_one_stripe": single_rate,
            "one_over_default": single_rate / striped,
            "one_stripe_runs": one_stripe_runs,
        }

        say("verifying our ledger (ledger_verify)")
        verification = dict(ledger_verify())
        ours_ok = ledger_ok(verification)
        connections.close_all()
        say("checking the pgbench copy's balances (its hash chains are placeholders by design)")
        pgb_check = verify_in_child(django_env(database_url(args.server, pgb_db), secret_key))
        pgb_ok = pgb_check["balanced"] and pgb_check["accounts_match"] and pgb_check["custody_matches"]

        print()
        print(
            f"Ledger release: our service layer (worker processes) vs pgbench (plain SQL, -M simple); "
            f"{args.seconds} s per run, median of {args.rounds} round(s)"
        )
        print(f"command: {command}")
        print(f"machine: {host['nproc']} CPUs, {host['cpu']}; PostgreSQL {host['postgresql']}")
        print(f"date:    {started.strftime('%Y-%m-%d %H:%M UTC')}")
        print()
        print_tables(rows, args.rounds)
        print()
        print(
            f"hash chain at {top} clients: {default_stripes} stripes {striped:.1f} ops/s, "
            f"1 stripe {single_rate:.1f} ops/s (1 stripe / {default_stripes} stripes = "
            f"{stripe_effect['one_over_default']:.2f})"
        )
        print(
            f"statements per release: service {len(statements)} + BEGIN/COMMIT, "
            f"pgbench {PGBENCH_STATEMENTS} + BEGIN/END"
        )
        print(
            "ledger_verify (ours): "
            + ", ".join(f"{key}={verification[key]}" for key in VERIFY_KEYS)
            + f", entries={verification['entries']}"
        )
        for problem in verification["problems"][:10]:
            print(f"  problem: {problem}")
        print(
            "pgbench copy: "
            + ", ".join(f"{key}={pgb_check[key]}" for key in ("balanced", "custody_matches", "accounts_match"))
            + f", entries={pgb_check['entries']} (chain_ok={pgb_check['chain_ok']}: placeholder hashes, expected)"
        )
        all_ours = [run for runs in ours_runs.values() for run in runs] + one_stripe_runs
        failed_ops = sum(run["errors"] for run in all_ours)
        failed_pgb = sum(run["failed"] or 0 for runs in pgbench_runs.values() for run in runs)
        if failed_ops or failed_pgb:
            print(f"failed transactions: ours {failed_ops}, pgbench {failed_pgb}")

        out_dir = REPO / "bench" / "out"
        out_dir.mkdir(parents=True, exist_ok=True)
        report = {
            "benchmark": "ledger release",
            "command": command,
            "date": started.isoformat(timespec="seconds"),
            "machine": host,
            "settings": {
                "seconds": args.seconds,
                "rounds": args.rounds,
                "clients": args.client_counts,
                "cards": args.cards,
                "merchants": args.merchants,
                "default_stripes": default_stripes,
                "warmup_ops_per_worker": WARMUP_OPS,
                "pgbench_protocol": "simple",
                "django_debug": False,
            },
            "statements_per_release": statements,
            "pgbench_statements_per_transaction": PGBENCH_STATEMENTS,
            "rows": rows,
            "ours": {str(clients): runs for clients, runs in ours_runs.items()},
            "pgbench": {str(clients): runs for clients, runs in pgbench_runs.items()},
            "pgbench_script": pgbench_script,
            "hash_chain": stripe_effect,
            "ledger_verify": verification,
            "pgbench_copy_check": pgb_check,
            "failed": {"ours": failed_ops, "pgbench": failed_pgb},
        }
        out = out_dir / "ledger.json"
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"results: {out.relative_to(REPO)}")
        if not ours_ok:
            print("FAIL: our ledger no longer verifies", file=sys.stderr)
            return 1
        if not pgb_ok:
            print("FAIL: the pgbench script left unbalanced books: not the equivalent transaction", file=sys.stderr)
            return 1
        return 0
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        for name in reversed(created):
            try:
                admin(args.server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                say(f"dropped database {name}")
            except Exception as exc:  # noqa: BLE001 - report and keep dropping the others
                print(f"could not drop database {name}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
