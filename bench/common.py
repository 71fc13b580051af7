"""What the PostgreSQL benchmarks share: a throwaway database, Django's environment for it, the
machine's description, and a fresh process whose peak memory is the measured work's own.

Used by ``bench/settlement.py`` and ``bench/risk.py``; each imports it after putting the repository
on ``sys.path``.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432"
MiB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


def out_name(benchmark: str, scale: int) -> str:
    """The file of ``bench/out`` a run writes: ``risk.json`` at the default sizes, ``risk-10x.json``
    at ``--scale 10``, so that a scaled run never overwrites the default run's figures."""
    return f"{benchmark}.json" if scale == 1 else f"{benchmark}-{scale}x.json"


def add_scale_argument(parser) -> None:
    parser.add_argument(
        "--scale",
        type=int,
        default=1,
        help="multiply the default sizes (issue 20's 10x: --scale 10); explicit sizes still win; "
        "results go to bench/out/<name>-<scale>x.json",
    )


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def database_url(server: str, name: str) -> str:
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def django_env(url: str, secret_key: str, broker: str | None = None) -> dict[str, str]:
    """Django as in production (DEBUG off, so no cursor logs its SQL) on database ``url``."""
    env = {
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secret_key,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PAYMENT_GATEWAY": "local",
    }
    if broker is not None:
        env["CELERY_BROKER_URL"] = broker
    return env


def connect(url: str, *, autocommit: bool = False):
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = autocommit
    return conn


def admin(server: str, sql: str) -> None:
    """Run one statement on the server's maintenance database, outside a transaction."""
    conn = connect(database_url(server, "postgres"), autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


@contextmanager
def throwaway_database(server: str, name: str, *, keep: bool = False) -> Iterator[str]:
    """Create database ``name`` on ``server``, yield its URL, and drop it at the end whatever happened
    (``keep``: leave it, to study the data after the run, and say how to drop it)."""
    say(f"creating database {name}")
    admin(server, f'CREATE DATABASE "{name}"')
    try:
        yield database_url(server, name)
    finally:
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if keep:
            say(f'kept database {name}: drop it with DROP DATABASE "{name}" WITH (FORCE)')
        else:
            try:
                admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                say(f"dropped database {name}")
            except Exception as exc:  # noqa: BLE001 - report, never mask the run's own error
                print(f"could not drop database {name}: {exc}", file=sys.stderr)


# After a bulk load in plain SQL: the identity sequences continue after the rows written.
SEQUENCES_FROM_DATA = [
    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
    for table in ("core_user", "escrow_account", "escrow_journalentry")
]


def vacuum_and_checkpoint(conn, timings: dict[str, float]) -> None:
    """VACUUM ANALYZE and CHECKPOINT after a bulk load, so that the timed work starts from fresh
    statistics and no pending checkpoint; the time it took goes into ``timings``."""
    started = time.monotonic()
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    conn.autocommit = False
    timings["vacuum analyze + checkpoint"] = round(time.monotonic() - started, 2)
    say(f"  VACUUM ANALYZE and CHECKPOINT: {timings['vacuum analyze + checkpoint']:.1f} s")


# Unique and exclusion constraints no foreign key references, and indexes that back no primary key,
# unique or exclusion constraint and that no foreign key references: what can go during the load.
SECONDARY_CONSTRAINTS = """
SELECT c.oid, c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.conrelid = ANY(%(tables)s::regclass[]) AND c.contype IN ('u', 'x')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)
ORDER BY 2, 3
"""
SECONDARY_INDEXES = """
SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = ANY(%(tables)s::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x', 'f'))
  AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = i.indexrelid)
ORDER BY 2, 1
"""


def schema_of(conn, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every index and constraint of ``tables`` as PostgreSQL defines it, to check that the
    rebuilt schema is the migrated one."""
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE tablename = ANY(%(names)s) "
            "UNION ALL SELECT conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE conrelid = ANY(%(tables)s::regclass[]) ORDER BY 1, 2",
            {"names": list(tables), "tables": list(tables)},
        )
        return cursor.fetchall()


def secondary_indexes_drop(conn, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """Drop the secondary indexes and unique constraints of ``tables`` (primary keys, foreign keys
    and what foreign keys reference stay); return ``(table, statement)`` pairs that rebuild each
    as it was defined."""
    rebuild: list[tuple[str, str]] = []
    with conn, conn.cursor() as cursor:
        cursor.execute(SECONDARY_CONSTRAINTS, {"tables": list(tables)})
        for _, table, name, definition in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            rebuild.append((table, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
        cursor.execute(SECONDARY_INDEXES, {"tables": list(tables)})
        for index, table, definition in cursor.fetchall():
            cursor.execute(f"DROP INDEX {index}")
            rebuild.append((table, definition))
    return rebuild


def secondary_indexes_rebuild(conn, rebuild: list[tuple[str, str]], timings: dict[str, float]) -> None:
    """Rebuild what ``secondary_indexes_drop`` dropped, table by table, each index built by one sort."""
    started = time.monotonic()
    for table in dict.fromkeys(table for table, _ in rebuild):
        table_started = time.monotonic()
        statements = [statement for owner, statement in rebuild if owner == table]
        with conn, conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        say(f"    {table}: {len(statements)} indexes in {time.monotonic() - table_started:.1f} s")
    timings["secondary indexes rebuilt"] = round(time.monotonic() - started, 2)
    say(f"  {len(rebuild)} secondary indexes rebuilt: {timings['secondary indexes rebuilt']:.1f} s")


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid``, from /proc (Linux)."""
    try:
        after_name = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(after_name[11]) + int(after_name[12])) / CLK_TCK


def machine_busy_cpu() -> float:
    """CPU seconds every process of this machine has used so far (user, nice, system, irq and
    softirq of ``/proc/stat``'s ``cpu`` line): less a process's own, what the others used, the
    database's backends among them, however many come and go."""
    user, nice, system, _idle, _iowait, irq, softirq = (
        int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    )
    return (user + nice + system + irq + softirq) / CLK_TCK


def rss_now() -> int:
    """The current resident set size of this process in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def machine(server: str, broker: str | None = None) -> dict[str, object]:
    """The CPUs, memory, PostgreSQL (version and the settings that matter here), Redis if a broker
    is given, Python, and the load average at the start."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    conn = connect(database_url(server, "postgres"))
    try:
        with conn.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
            cursor.execute(
                "SELECT name, setting || COALESCE(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'max_wal_size', 'fsync', 'synchronous_commit', 'autovacuum', "
                "'max_parallel_workers_per_gather', 'jit') ORDER BY name"
            )
            pg_settings = dict(cursor.fetchall())
    finally:
        conn.close()
    host: dict[str, object] = {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "postgresql": pg_version,
        "postgresql_settings": pg_settings,
        "python": sys.version.split()[0],
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "loadavg_at_start": os.getloadavg()[0],
    }
    if broker is not None:
        import redis

        host["redis"] = redis.Redis.from_url(broker).info("server").get("redis_version", "unknown")
    return host


def run_in_fresh_process(
    target: Callable, args: tuple, *, what: str, poll: Callable[[], None] | None = None, join_timeout: float = 120
):
    """Run ``target(*args, results)`` in a freshly spawned process and return what it put on
    ``results``. A spawned process starts with nothing of the parent's memory, so its peak RSS is
    the measured work's own. ``poll`` is called every 5 s while waiting (progress from outside)."""
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    child = ctx.Process(target=target, args=(*args, results))
    child.start()
    outcome = None
    try:
        while outcome is None:
            try:
                outcome = results.get(timeout=5)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the {what} died (exit code {child.exitcode})") from None
                if poll is not None:
                    poll()
        child.join(timeout=join_timeout)
    finally:
        if child.is_alive():
            child.terminate()
            child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"the {what} failed (exit code {child.exitcode})")
    return outcome


# The counter code of the bench's card ``j`` (``consumers.models.Card.counter_code``): ``j`` written
# in base 31 with the codes' alphabet (``COUNTER_CODE_ALPHABET``), eight symbols, so unique by
# construction. SQL over a column ``j``, with ``%`` doubled for a statement that takes parameters.
COUNTER_CODE_SQL = " || ".join(
    f"substr('23456789ABCDEFGHJKMNPQRSTUVWXYZ', (j::bigint / {31**k} %% 31)::int + 1, 1)" for k in range(8)
)
