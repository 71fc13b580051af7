"""Benchmark: a fan-out at city scale: a regulator's flag told to every one of a merchant's 100,000
card holders (``notifications.services.fanout_step``), notices recorded per second.

Run it with ``make bench`` or ``.venv/bin/python bench/notify.py`` (``--help`` for options); it needs
PostgreSQL and never runs under ``make test``. See bench/README.md for what it measures.

What runs, in order:

1. A database ``bench_notify_<pid>`` is created on ``--server`` and migrated.
2. One merchant (through its sign-up service) and ``--holders`` consumers, each with a phone and
   one active card at that merchant holding escrow, are written in bulk (``core.sql.rows_insert``:
   users, notification settings, consumers, escrow accounts, cards). VACUUM ANALYZE and CHECKPOINT.
3. Timed: ``fanout_start`` (the job and its audience's count) and then ``fanout_step`` chunk after
   chunk (``FANOUT_CHUNK``, 1,000) until the job is done, in this process, as a worker runs them:
   each chunk reads its holders on the audience's index, writes their notices in one statement and
   their SMS outbox messages (the ``console`` backend) in one more, and moves the cursor, in one
   transaction. The broker is ``memory://``: the delivery tasks queued after each commit are not
   run (delivery is the outbox's own, measured by bench/settlement.py's payouts).
4. Checks: one notice per holder, one SMS outbox message per notice, the job ``done`` with
   ``done == total == holders``.
5. The database is dropped, whatever happened. Results go to bench/out/notify.json.

Target: at least 2,000 notices recorded per second (in the app, with their SMS messages).
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

from bench.common import (  # noqa: E402 (the repository on sys.path first)
    DEFAULT_SERVER,
    connect,
    django_env,
    machine,
    say,
    throwaway_database,
    vacuum_and_checkpoint,
    verdict,
)

TARGET_PER_S = 2_000
BATCH = 10_000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holders", type=int, default=100_000, help="card holders of the merchant (default 100,000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5,000 holders")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"PostgreSQL server URL (default {DEFAULT_SERVER})")
    args = parser.parse_args(argv)
    if args.quick:
        args.holders = 5_000
    return args


def load(holders: int) -> str:
    """The merchant and its holders; returns the merchant's id."""
    from datetime import timedelta

    from consumers.models import Card, Consumer
    from core import clock
    from core.models import User
    from core.sql import rows_insert
    from escrow.models import Account
    from merchants.services.merchants import merchant_register, product_create
    from notifications.models import NotificationSettings

    merchant = merchant_register(
        username="bench-gym", password="bench-pass-2026", name="阳光健身", license_number="91350100M000100Y43",
        category="fitness", district="朝阳区", address="1 Guanghua Rd",
    )  # fmt: skip
    product = product_create(merchant=merchant, name="10 sessions", kind="session_pack", price=100_000, sessions=10)
    now = clock.now()
    for start in range(0, holders, BATCH):
        n = min(BATCH, holders - start)
        names = [f"holder-{start + i:07d}" for i in range(n)]
        rows_insert(model=User, fields=["username"], rows=[(name,) for name in names],
                    constants={"password": "!", "role": "consumer", "date_joined": now})  # fmt: skip
        users = list(User.objects.filter(username__in=names).order_by("pk").values_list("pk", flat=True))
        rows_insert(model=NotificationSettings, fields=["user", "phone"],
                    rows=[(user, f"138{user:08d}"[-11:]) for user in users])  # fmt: skip
        consumers = [(user, f"Holder {user}", f"138{user:08d}"[-11:]) for user in users]
        rows_insert(model=Consumer, fields=["user", "display_name", "phone"], rows=consumers,
                    constants={"created_at": now})  # fmt: skip
        consumer_ids = list(Consumer.objects.filter(user_id__in=users).order_by("user_id").values_list("pk", flat=True))
        rows_insert(model=Account, fields=["name"], rows=[(f"escrow: bench {start + i}",) for i in range(n)],
                    constants={"kind": Account.Kind.CARD_ESCROW, "balance": 100_000, "created_at": now})  # fmt: skip
        accounts = list(
            Account.objects.filter(
                name__startswith="escrow: bench ", name__in=[f"escrow: bench {start + i}" for i in range(n)]
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        rows_insert(
            model=Card,
            fields=["consumer", "escrow_account"],
            rows=list(zip(consumer_ids, accounts, strict=True)),
            constants={
                "product": product.pk, "merchant": merchant.pk, "kind": "session_pack", "state": Card.State.ACTIVE,
                "price": 100_000, "sessions": 10, "sessions_remaining": 10, "paid_at": now - timedelta(days=30),
                "cooling_off_ends_at": now - timedelta(days=22), "created_at": now - timedelta(days=30),
            },
        )  # fmt: skip
        say(f"  {start + n:,} holders loaded")
    return str(merchant.pk)


def fan_out(merchant_id: str) -> dict:
    from django.db import connection

    from core.models import OutboxMessage
    from notifications.models import FanOut, Notification
    from notifications.services import fanout_start, fanout_step

    started = time.monotonic()
    job = fanout_start(
        kind="merchant_flagged", event_key=f"merchant_flagged:bench:{merchant_id}", params={"merchant": "阳光健身"},
        audience="card_holders", audience_arg=merchant_id, merchant_id=merchant_id, about_money=True,
    )  # fmt: skip
    chunks = 0
    while fanout_step(job_id=job.pk):
        chunks += 1
        if chunks % 20 == 0:
            say(f"  {chunks:,} chunks")
    chunks += 1
    seconds = time.monotonic() - started
    job = FanOut.objects.get(pk=job.pk)
    notices = Notification.objects.filter(event_key=job.event_key)
    per_user = notices.values("user_id").distinct().count()
    sms = OutboxMessage.objects.filter(topic="notify.sms").count()
    connection.close()
    return {
        "seconds": round(seconds, 3),
        "chunks": chunks,
        "notices": notices.count(),
        "distinct_holders": per_user,
        "sms_messages": sms,
        "job": {"state": job.state, "done": job.done, "total": job.total},
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    python = sys.executable
    if python.startswith(f"{REPO}{os.sep}"):
        python = os.path.relpath(python, REPO)
    command = shlex.join([python, "bench/notify.py", *argv])
    started_at = datetime.now(UTC)
    host = machine(args.server)
    say(f"command: {command}")
    say(f"machine: {host['nproc']} CPUs ({host['cpu']}), PostgreSQL {host['postgresql']}, Python {host['python']}")
    with throwaway_database(args.server, f"bench_notify_{os.getpid()}") as url:
        env = django_env(url, secrets.token_urlsafe(32), broker="memory://")
        env["SMS_BACKEND"] = "console"
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        say("migrating")
        call_command("migrate", interactive=False, verbosity=0)
        say(f"loading {args.holders:,} holders")
        merchant_id = load(args.holders)
        connections.close_all()
        timings: dict[str, float] = {}
        conn = connect(url)
        try:
            vacuum_and_checkpoint(conn, timings)
        finally:
            conn.close()
        say("fan-out (timed)")
        result = fan_out(merchant_id)
    per_s = result["notices"] / result["seconds"]
    checks_ok = (
        result["notices"] == result["distinct_holders"] == args.holders
        and result["sms_messages"] == args.holders
        and result["job"] == {"state": "done", "done": args.holders, "total": args.holders}
    )
    report = {
        "command": command,
        "date": started_at.isoformat(timespec="seconds"),
        "machine": host,
        "settings": {"holders": args.holders, "quick": args.quick, "chunk": 1000},
        "fanout": result,
        "notices_per_s": round(per_s, 1),
        "target_per_s": TARGET_PER_S,
        "verdict": verdict(per_s >= TARGET_PER_S),
        "checks_ok": checks_ok,
        "headline": [
            {
                "figure": f"fan-out to {args.holders:,} holders: notices recorded (in-app + SMS outbox)",
                "value": round(per_s, 1),
                "unit": "notices/s",
                "target": {"on": "value", "op": ">=", "limit": TARGET_PER_S},
            }
        ],
    }
    print()
    print(f"fan-out of one event to {args.holders:,} card holders, {result['chunks']} chunks")
    print(
        f"  {result['notices']:,} notices and {result['sms_messages']:,} SMS outbox messages"
        f" in {result['seconds']:.2f} s"
    )
    print(f"  {per_s:,.0f} notices/s (target >= {TARGET_PER_S:,}/s): {report['verdict']}")
    print(f"  checks (one notice and one SMS message per holder, job done): {'ok' if checks_ok else 'FAILED'}")
    print(f"  reproduce: {command}")
    out_dir = REPO / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "notify.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"results: {out.relative_to(REPO)}")
    if not checks_ok:
        print("FAIL: checks failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
