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
3. For each client count: ours, then pgbench, each for ``--seconds``.
   Ours: that many worker *processes* (spawned, each with its own connection) call
   ``ledger_transfer(code="release", card escrow -> its merchant settlement, amount=1)`` with a
   unique idempotency key on random cards; ops/s = releases committed / wall time.
   pgbench: ``pgbench -n -M simple`` with the same client count (``-j`` = ``-c``) running the
   plain-SQL transaction (lock the card row, update two balances, insert the entry with its unique
   idempotency key, insert its two postings) on the copy; its tps excludes connection time.
4. Ours again at the top client count with ``LEDGER_CHAIN_STRIPES=1`` (one global hash chain),
   compared with the default stripes: the cost of the chain as a global lock.
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
import secrets
import shlex
import shutil
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
    barrier.wait(timeout=START_TIMEOUT)
    ops = errors = 0
    error_kinds: dict[str, int] = {}
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
        rows = [results.get(timeout=seconds + START_TIMEOUT) for _ in workers]
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
    return {
        "clients": clients,
        "ops": ops,
        "errors": errors,
        "error_kinds": kinds,
        "elapsed_s": round(elapsed, 3),
        "ops_per_s": ops / elapsed,
        "per_worker_ops": [row["ops"] for row in sorted(rows, key=lambda row: row["index"])],
        "stripes": stripes[0] if len(stripes) == 1 else stripes,
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
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    output = done.stdout + done.stderr
    tps = _TPS.search(output)
    if done.returncode != 0 or tps is None:
        raise RuntimeError(f"pgbench failed (exit {done.returncode}):\n{output}")
    processed = _PROCESSED.search(output)
    failed = _FAILED.search(output)
    latency = _LATENCY.search(output)
    return {
        "clients": clients,
        "tps": float(tps.group(1)),
        "transactions": int(processed.group(1)) if processed else None,
        "failed": int(failed.group(1)) if failed else None,
        "latency_ms": float(latency.group(1)) if latency else None,
        "command": shlex.join(["pgbench", *command[1:]]),
    }


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
    custody = Account.objects.get(kind=Account.Kind.CUSTODY)  # opened by migration 0002
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


def ratio_row(clients: int, ours: float, pgbench: float) -> dict:
    ratio = ours / pgbench if pgbench else 0.0
    target = TARGETS.get(clients)
    verdict = "-" if target is None else ("PASS" if ratio >= target else "MISS")
    return {"clients": clients, "ours": ours, "pgbench": pgbench, "ratio": ratio, "target": target, "verdict": verdict}


def print_table(rows: list[dict]) -> None:
    print(f"{'clients':>7}  {'ours ops/s':>10}  {'pgbench tps':>11}  {'ratio':>5}  {'target':>6}  result")
    for row in rows:
        target = "-" if row["target"] is None else f">={row['target']:.2f}"
        print(
            f"{row['clients']:>7}  {row['ours']:>10.1f}  {row['pgbench']:>11.1f}  {row['ratio']:>5.2f}  "
            f"{target:>6}  {row['verdict']}",
            flush=True,
        )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each run (default 10)")
    parser.add_argument("--clients", default="1,2,8", help="comma-separated client counts (default 1,2,8)")
    parser.add_argument("--cards", type=int, default=2000, help="card escrow accounts (default 2000)")
    parser.add_argument("--merchants", type=int, default=200, help="merchant settlement accounts (default 200)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"PostgreSQL server URL (default {DEFAULT_SERVER})")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per run")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 3
    args.client_counts = sorted({int(c) for c in args.clients.split(",") if c.strip()})
    if not args.client_counts or min(args.client_counts) < 1 or args.seconds < 1:
        parser.error("--clients needs positive counts and --seconds a positive length")
    if args.cards < 1 or args.merchants < 1:
        parser.error("--cards and --merchants must be positive")
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

        rows: list[dict] = []
        ours_runs: list[dict] = []
        pgbench_runs: list[dict] = []
        with tempfile.TemporaryDirectory(prefix="bench_ledger_") as tmp:
            script = Path(tmp) / "release.sql"
            script.write_text(PGBENCH_SCRIPT.replace("{chain_base}", str(PGBENCH_CHAIN_BASE)))
            for clients in args.client_counts:
                say(f"ours: {clients} worker process(es), {args.seconds} s, {default_stripes} chain stripes")
                ours = run_ours(
                    label=f"c{clients}",
                    clients=clients,
                    seconds=args.seconds,
                    layout=layout,
                    env=django_env(database_url(args.server, db), secret_key),
                )
                say(f"  {ours['ops']} releases in {ours['elapsed_s']} s = {ours['ops_per_s']:.1f} ops/s")
                if ours["errors"]:
                    say(f"  {ours['errors']} failed releases: {ours['error_kinds']}")
                say(f"pgbench: {clients} client(s), {args.seconds} s")
                pgb = run_pgbench(
                    server=args.server,
                    dbname=pgb_db,
                    script=script,
                    clients=clients,
                    seconds=args.seconds,
                    layout=layout,
                )
                say(f"  {pgb['transactions']} transactions, tps {pgb['tps']:.1f}")
                ours_runs.append(ours)
                pgbench_runs.append(pgb)
                rows.append(ratio_row(clients, ours["ops_per_s"], pgb["tps"]))
            pgbench_script = script.read_text()

        top = args.client_counts[-1]
        say(f"ours: {top} worker process(es), {args.seconds} s, 1 chain stripe (one global hash chain)")
        single = run_ours(
            label=f"c{top}s1",
            clients=top,
            seconds=args.seconds,
            layout=layout,
            env=django_env(database_url(args.server, db), secret_key, stripes=1),
        )
        say(f"  {single['ops']} releases in {single['elapsed_s']} s = {single['ops_per_s']:.1f} ops/s")
        striped = next(run for run in ours_runs if run["clients"] == top)
        stripe_effect = {
            "clients": top,
            "default_stripes": default_stripes,
            "ops_per_s_default_stripes": striped["ops_per_s"],
            "ops_per_s_one_stripe": single["ops_per_s"],
            "one_over_default": single["ops_per_s"] / striped["ops_per_s"],
            "run_one_stripe": single,
        }

        say("verifying our ledger (ledger_verify)")
        verification = dict(ledger_verify())
        ours_ok = ledger_ok(verification)
        connections.close_all()
        say("checking the pgbench copy's balances (its hash chains are placeholders by design)")
        pgb_check = verify_in_child(django_env(database_url(args.server, pgb_db), secret_key))
        pgb_ok = pgb_check["balanced"] and pgb_check["accounts_match"] and pgb_check["custody_matches"]

        print()
        print(f"Ledger release: our service layer vs pgbench (plain SQL, -M simple), {args.seconds} s per run")
        print(f"command: {command}")
        print(f"machine: {host['nproc']} CPUs, {host['cpu']}; PostgreSQL {host['postgresql']}")
        print(f"date:    {started.strftime('%Y-%m-%d %H:%M UTC')}")
        print()
        print_table(rows)
        print()
        print(
            f"hash chain at {top} clients: {default_stripes} stripes {striped['ops_per_s']:.1f} ops/s, "
            f"1 stripe {single['ops_per_s']:.1f} ops/s (1 stripe / {default_stripes} = "
            f"{stripe_effect['one_over_default']:.2f})"
        )
        print(f"statements per release: service {len(statements)} + BEGIN/COMMIT, pgbench 5 + BEGIN/END")
        print(
            "ledger_verify (ours): "
            + ", ".join(
                f"{key}={verification[key]}" for key in ("balanced", "chain_ok", "custody_matches", "accounts_match")
            )
            + f", entries={verification['entries']}"
        )
        for problem in verification["problems"][:10]:
            print(f"  problem: {problem}")
        print(
            "pgbench copy: "
            + ", ".join(f"{key}={pgb_check[key]}" for key in ("balanced", "custody_matches", "accounts_match"))
            + f", entries={pgb_check['entries']} (chain_ok={pgb_check['chain_ok']}: placeholder hashes, expected)"
        )
        failed_ops = sum(run["errors"] for run in [*ours_runs, single])
        failed_pgb = sum(run["failed"] or 0 for run in pgbench_runs)
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
                "clients": args.client_counts,
                "cards": args.cards,
                "merchants": args.merchants,
                "default_stripes": default_stripes,
                "warmup_ops_per_worker": WARMUP_OPS,
                "pgbench_protocol": "simple",
                "django_debug": False,
            },
            "statements_per_release": statements,
            "rows": rows,
            "ours": ours_runs,
            "pgbench": pgbench_runs,
            "pgbench_script": pgbench_script,
            "hash_chain": stripe_effect,
            "ledger_verify": verification,
            "pgbench_copy_check": pgb_check,
        }
        out = out_dir / "ledger.json"
        out.write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"results: {out.relative_to(REPO)}")
        if not ours_ok:
            print("FAIL: our ledger no longer verifies", file=sys.stderr)
            return 1
        if not pgb_ok:
            print(
                "FAIL: the pgbench script left unbalanced books; it is not the equivalent transaction", file=sys.stderr
            )
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
