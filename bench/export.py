"""Benchmark: the regulator's journal export (CSV and XLSX) over a million postings, at constant memory.

Run it with ``make bench`` or ``.venv/bin/python bench/export.py`` (``--rows 20000`` or ``--quick``
for a smoke run); it needs PostgreSQL and never runs under ``make test``. See bench/README.md.

1. A database ``bench_export_<pid>`` is created on ``--server`` and migrated; one regulator user.
2. ``--rows`` postings are generated in bulk with ``INSERT ... SELECT generate_series`` (as
   bench/settlement.py loads its data; the ledger's triggers off for the loading session):
   ``--rows / 2`` journal entries of every code, spread over 30 Beijing days, each with two postings
   (custody debited, one of 1,000 merchant settlement accounts credited). VACUUM ANALYZE, CHECKPOINT.
3. For each format, in a freshly spawned process (its peak RSS is the export's own): Django set up,
   the regulator's API token on Django's test client, then ``GET
   /api/v1/regulator/exports/journal.<csv|xlsx>`` through the real URL, view, middleware and
   response, the body consumed piece by piece as a client would read it and thrown away. Measured:
   seconds to the first byte and to the last, rows/s, bytes, the peak RSS (``VmHWM``) and the RSS
   with Django loaded and connected (the baseline). Checked: the audit log line says every row left.
4. The database is dropped, whatever happened. Results go to bench/out/export.json.

Target (issue 18): a 1,000,000-row export at ≤ 150 MB peak memory; rows/s recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from common import (  # noqa: E402
    DEFAULT_SERVER,
    MiB,
    connect,
    database_url,
    django_env,
    machine,
    run_in_fresh_process,
    say,
    throwaway_database,
    vacuum_and_checkpoint,
    verdict,
)

TARGET_PEAK_MB = 150
ACCOUNTS = 1000
DAYS = 30
REGULATOR = "bench-regulator"
CODES = ("purchase", "release", "fee", "refund", "refund_paid", "payout", "correction")
PLACEHOLDER_HASH = "0" * 64
CHAIN = 3000  # outside the services' stripes: this benchmark does not verify hash chains


def vm(field: str) -> int:
    """A ``/proc/self/status`` figure (``VmHWM``, ``VmRSS``) in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def load(conn, rows: int) -> dict:
    """``rows`` postings (``rows // 2`` entries, two postings each) and their accounts, in bulk."""
    entries = rows // 2
    timings: dict[str, float] = {}
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM escrow_account")
        account_base = cursor.fetchone()[0] + 1
        cursor.execute("SELECT id FROM escrow_account WHERE kind = 'custody'")
        custody = cursor.fetchone()[0]
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM escrow_journalentry")
        entry_base = cursor.fetchone()[0] + 1
    p = {
        "accounts": ACCOUNTS,
        "account_base": account_base,
        "custody": custody,
        "entries": entries,
        "entry_base": entry_base,
        "codes": list(CODES),
        "hash": PLACEHOLDER_HASH,
        "chain": CHAIN,
        "start": "2026-11-01T00:00:00+08:00",
        "span_s": DAYS * 86400,
    }

    def step(name: str, sql: str) -> None:
        started = time.monotonic()
        with conn, conn.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            cursor.execute(sql, p)
        timings[name] = round(time.monotonic() - started, 2)
        say(f"  {name}: {timings[name]:.1f} s")

    step(
        f"{ACCOUNTS} merchant settlement accounts",
        """
        INSERT INTO escrow_account (id, kind, name, balance, currency, created_at)
        SELECT %(account_base)s + i, 'merchant_settlement', '商户结算账户 ' || i, 0, 'cny', %(start)s
        FROM generate_series(0, %(accounts)s - 1) i
        """,
    )
    step(
        f"{entries} journal entries",
        """
        INSERT INTO escrow_journalentry (id, code, idempotency_key, actor_id, actor_label, memo, created_at,
                                         chain, seq, prev_hash, hash)
        SELECT %(entry_base)s + i, (%(codes)s::text[])[i %% 7 + 1], 'bench-export:' || i, NULL, 'bench',
               '卡 ' || i || ' 的款项',
               %(start)s::timestamptz + (i::bigint * %(span_s)s / %(entries)s) * interval '1 second',
               %(chain)s, i + 1, %(hash)s, %(hash)s
        FROM generate_series(0, %(entries)s - 1) i
        """,
    )
    step(
        f"{entries * 2} postings",
        """
        INSERT INTO escrow_posting (entry_id, account_id, amount)
        SELECT %(entry_base)s + i, CASE WHEN side = 0 THEN %(custody)s ELSE %(account_base)s + i %% %(accounts)s END,
               CASE WHEN side = 0 THEN 1 ELSE -1 END * (100 + (i * 37) %% 500000)
        FROM generate_series(0, %(entries)s - 1) i, generate_series(0, 1) side
        ORDER BY 1, 2
        """,
    )
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('escrow_account', 'id'), (SELECT MAX(id) FROM escrow_account))"
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('escrow_journalentry', 'id'), "
            "(SELECT MAX(id) FROM escrow_journalentry))"
        )
        cursor.execute("SELECT COUNT(*), pg_size_pretty(pg_total_relation_size('escrow_posting')) FROM escrow_posting")
        postings, size = cursor.fetchone()
    vacuum_and_checkpoint(conn, timings)
    return {"postings": postings, "entries": entries, "posting_size": size, "timings_s": timings}


def export_child(file_format: str, results) -> None:
    """In a fresh process: the export through Django's test client, consumed as a client reads it."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from regulator.models import AuditEvent

    user = get_user_model().objects.get(username=REGULATOR)
    token, _created = Token.objects.get_or_create(user=user)
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {token.key}")
    connection.ensure_connection()
    rss_ready = vm("VmRSS")
    started = time.monotonic()
    response = client.get(f"/api/v1/regulator/exports/journal.{file_format}", secure=True)  # production: HTTPS
    assert response.status_code == 200, response.status_code
    first_byte_s = None
    size = pieces = newlines = 0
    for piece in response.streaming_content:
        if first_byte_s is None:
            first_byte_s = time.monotonic() - started
        size += len(piece)
        pieces += 1
        if file_format == "csv":
            newlines += piece.count(b"\n")
    total_s = time.monotonic() - started
    peak = vm("VmHWM")
    line = AuditEvent.objects.filter(verb="export", target=f"export:journal.{file_format}").latest("pk")
    results.put(
        {
            "format": file_format,
            "status": response.status_code,
            "streaming_class": type(response).__name__,
            "first_byte_s": round(first_byte_s or total_s, 3),
            "total_s": round(total_s, 2),
            "bytes": size,
            "pieces": pieces,
            "csv_lines": newlines if file_format == "csv" else None,
            "audit_rows": line.changes["rows"][1],
            "peak_rss_bytes": peak,
            "rss_ready_bytes": rss_ready,
        }
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("BENCH_POSTGRES", DEFAULT_SERVER))
    parser.add_argument("--rows", type=int, default=1_000_000, help="postings to export (default 1,000,000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20,000 rows")
    parser.add_argument("--formats", default="csv,xlsx", help="comma-separated: csv, xlsx")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 20_000
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    python = sys.executable
    if python.startswith(f"{REPO}{os.sep}"):
        python = os.path.relpath(python, REPO)
    command = shlex.join([python, "bench/export.py", *argv])
    host = machine(args.server)
    say(f"command: {command}")
    say(
        f"machine: {host['nproc']} CPUs ({host['cpu']}), PostgreSQL {host['postgresql']}, "
        f"Python {host['python']}, load average {host['loadavg_at_start']:.2f}"
    )
    db = f"bench_export_{os.getpid()}"
    env = django_env(database_url(args.server, db), secrets.token_urlsafe(32))
    env["DJANGO_ALLOWED_HOSTS"] = "localhost"
    os.environ.update(env)
    report: dict = {
        "command": command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": host,
        "settings": {"rows": args.rows, "quick": args.quick or args.rows < 1_000_000},
    }
    with throwaway_database(args.server, db) as url:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connections

        from regulator.exports import CHUNK

        say("migrating")
        call_command("migrate", interactive=False, verbosity=0)
        get_user_model().objects.create_user(username=REGULATOR, password=None, role="regulator")
        report["settings"]["chunk"] = CHUNK
        say(f"generating {args.rows} postings")
        conn = connect(url)
        try:
            report["data"] = load(conn, args.rows)
        finally:
            conn.close()
        connections.close_all()
        runs = []
        for file_format in args.formats.split(","):
            say(f"exporting journal.{file_format} in a fresh process (load average {os.getloadavg()[0]:.2f})")
            run = run_in_fresh_process(export_child, (file_format,), what=f"{file_format} export", join_timeout=600)
            run["rows"] = report["data"]["postings"]
            run["rows_per_s"] = round(run["rows"] / run["total_s"], 0)
            run["loadavg"] = os.getloadavg()[0]
            run["complete"] = run["audit_rows"] == run["rows"] and (run["csv_lines"] in (None, run["rows"] + 1))
            run["memory_verdict"] = verdict(run["peak_rss_bytes"] <= TARGET_PEAK_MB * 1e6)
            runs.append(run)
            say(
                f"  {file_format}: {run['rows']} rows in {run['total_s']:.1f} s ({run['rows_per_s']:.0f} rows/s), "
                f"first byte {run['first_byte_s']:.2f} s, {run['bytes'] / MiB:.1f} MiB, peak RSS "
                f"{run['peak_rss_bytes'] / 1e6:.1f} MB (Django ready {run['rss_ready_bytes'] / 1e6:.1f} MB) "
                f"{run['memory_verdict']} (≤ {TARGET_PEAK_MB} MB), every row out: {run['complete']}"
            )
        report["runs"] = runs
    report["headline"] = [
        item
        for run in runs
        for item in (
            {
                "figure": f"journal.{run['format']}: peak RSS, {run['rows']:,} rows",
                "value": round(run["peak_rss_bytes"] / 1e6, 1),
                "unit": "MB",
                "baseline": "RSS with Django loaded and connected",
                "baseline_value": round(run["rss_ready_bytes"] / 1e6, 1),
                "target": {"on": "value", "op": "<=", "limit": TARGET_PEAK_MB},
            },
            {"figure": f"journal.{run['format']}: rows/s", "value": run["rows_per_s"], "unit": "rows/s"},
        )
    ]
    out = REPO / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "export.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    say(f"wrote bench/out/export.json; reproduce with: {command}")
    ok = all(run["complete"] and run["memory_verdict"] == "PASS" for run in runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
