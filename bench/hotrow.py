"""Benchmark: payments across 1,000 merchants, and how often they wait on a row lock (issue 20, "no
city-wide hot row").

Run it with ``make bench`` or ``.venv/bin/python bench/hotrow.py`` (``--help`` for options; ``--quick``
for a short smoke run); it needs PostgreSQL and never runs under ``make test``. See bench/README.md
("No city-wide hot row") for a recorded run.

What runs, in order:

1. A database ``bench_hotrow_<pid>`` is created on ``--server`` and migrated. ``--merchants``
   merchants (1,000) are written with one session-pack product each, as merchants signed up before
   per-merchant accounts existed: each has its settlement account but no custody or
   refunds-payable account of its own, so their money moves through the city-wide accounts. Each
   client gets a consumer of its own (a consumer's purchases may lock the consumer's row).
2. "before": ``--clients`` (8) client processes (spawned, each with its own connection) each buy a
   card from a random merchant and pay it, through the services a request calls
   (``consumers.services.card_purchase``, then ``payment_simulate(outcome="succeeded")``: the
   purchase entry custody → the card's escrow), for ``--seconds``, all released at once by a
   barrier. Meanwhile this process polls ``pg_stat_activity`` for the clients' backends every
   ``--interval-ms`` (one sample = one backend at one poll).
3. ``manage.py ledger_split_custody`` moves every merchant onto its own custody and refunds-payable
   accounts (timed).
4. "after": the same load again, now on per-merchant accounts.
5. ``ledger_verify()`` must pass, and the city-wide custody account must not have moved during the
   "after" run (exit 1 otherwise). The database is dropped, whatever happened.

What counts as waiting on a row lock: a sample whose ``wait_event_type`` is ``Lock`` and
``wait_event`` is ``transactionid`` (waiting for the transaction that holds a row we want to lock
or update to end) or ``tuple`` (queued for a row's lock behind another waiter). The share is of all
the clients' samples, whatever their state (a backend idle between two transactions counts in the
denominator); the share among samples in a transaction (state not ``idle``) is reported beside it.
Each waiting sample is attributed to the row it waits for, from its tuple locks in ``pg_locks``:
its table (``escrow_account``: an account's balance; ``escrow_chainhead``: a hash chain's head)
and, for an account, its kind and whether it is a city-wide one (when that row version is still
the current one; a merchant's own custody account is locked by that merchant's payments only). Results go to
bench/out/hotrow.json, whose ``headline`` bench/report.py reads.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import secrets
import shlex
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import DEFAULT_SERVER, connect, django_env, machine, say, throwaway_database  # noqa: E402

OUT = REPO / "bench" / "out" / "hotrow.json"
START_TIMEOUT = 300
TARGET_ROW_LOCK_SHARE = 0.01  # issue 20: at most 1 % of samples waiting on a row lock
ROW_LOCK_EVENTS = ("transactionid", "tuple")
PRICE = 10_000  # fen a card


def setup_merchants(merchants: int, clients: int) -> dict:
    """``merchants`` merchants without custody accounts of their own (as before they existed), a
    product each, and a consumer per client; written in bulk (signing up a thousand merchants
    through the service would spend minutes hashing their passwords)."""
    from consumers.models import Consumer
    from core import clock
    from core.models import User
    from core.rules import profile_version
    from escrow.models import Account
    from merchants.models import Merchant, Product

    now = clock.now()
    users = User.objects.bulk_create(
        [User(username=f"bench-merchant-{i}", password="!", role=User.Role.MERCHANT) for i in range(merchants)]
    )
    accounts = Account.objects.bulk_create(
        [
            Account(kind=Account.Kind.MERCHANT_SETTLEMENT, name=f"settlement: bench merchant {i}", created_at=now)
            for i in range(merchants)
        ]
    )
    shops = Merchant.objects.bulk_create(
        [
            Merchant(
                user=user,
                name=f"bench merchant {i}",
                license_number=f"BENCH{i:013d}",
                category=Merchant.Category.FITNESS,
                district="110105",
                address="bench",
                settlement_account=account,
                created_at=now,
            )
            for i, (user, account) in enumerate(zip(users, accounts, strict=True))
        ]
    )
    version = profile_version()
    products = Product.objects.bulk_create(
        [
            Product(
                merchant=shop,
                name="bench pack",
                kind=Product.Kind.SESSION_PACK,
                price=PRICE,
                sessions=10,
                rules_version=version,
                created_at=now,
            )
            for shop in shops
        ]
    )
    buyers = []
    for i in range(clients):
        user = User.objects.create(username=f"bench-consumer-{i}", password="!", role=User.Role.CONSUMER)
        buyers.append(
            Consumer.objects.create(user=user, display_name=f"bench {i}", phone="13800000000", created_at=now)
        )
    return {"products": [str(p.pk) for p in products], "consumers": [str(c.pk) for c in buyers]}


def _client(spec: dict, index: int, barrier, pids, results) -> None:
    """One client: buy and pay a card at a random merchant, again and again until time is up."""
    os.environ.update(spec["env"])
    import django

    django.setup()
    from django.db import DatabaseError, connections

    from consumers.models import Consumer
    from consumers.services import card_purchase, payment_simulate
    from core.errors import DomainError

    connections.close_all()
    rng = random.Random(f"{spec['label']}:{index}")
    products = spec["products"]
    buyer = Consumer.objects.get(pk=spec["consumers"][index])

    def pay() -> None:
        card = card_purchase(consumer=buyer, product_id=rng.choice(products))
        payment_simulate(consumer=buyer, payment_id=card.payment.pk, outcome="succeeded")

    for _ in range(3):  # warm-up: prepared statements, caches
        pay()
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pids.put(cursor.fetchone()[0])
    barrier.wait(timeout=START_TIMEOUT)
    done = errors = 0
    kinds: Counter[str] = Counter()
    start = time.monotonic()
    deadline = start + spec["seconds"]
    while time.monotonic() < deadline:
        try:
            pay()
            done += 1
        except (DatabaseError, DomainError) as exc:  # counted, never hidden
            errors += 1
            kinds[type(exc).__name__] += 1
    end = time.monotonic()
    connections.close_all()
    results.put(
        {"index": index, "payments": done, "errors": errors, "error_kinds": dict(kinds), "start": start, "end": end}
    )


# One poll: each client backend's state and wait; for one waiting on a lock, the rows it holds or
# waits for a lock on (a backend waiting for a row's transaction holds that row's tuple lock; one
# queued behind it waits for the tuple lock), read from pg_locks only then: each as its table, and
# for an account its kind (and whether it is a city-wide one) when that row version is still the
# current one.
POLL = """
SELECT a.state, a.wait_event_type, a.wait_event,
       CASE WHEN a.wait_event_type = 'Lock' THEN (
           SELECT string_agg(DISTINCT l.relation::regclass::text || COALESCE(': ' || (
               SELECT acc.kind || CASE WHEN acc.city_wide THEN ' (city-wide)' ELSE '' END
               FROM escrow_account acc
               WHERE l.relation = 'escrow_account'::regclass AND acc.ctid = format('(%%s,%%s)', l.page, l.tuple)::tid
           ), ''), ', ')
           FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'tuple'
       ) END
FROM pg_stat_activity a WHERE a.pid = ANY(%s)
"""


def run_phase(*, label: str, url: str, env: dict, layout: dict, clients: int, seconds: float, interval: float) -> dict:
    """The payments load for ``seconds`` with the sampler polling the clients' backends."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(clients + 1)
    pids, results = ctx.Queue(), ctx.Queue()
    spec = {"label": label, "env": env, "seconds": seconds, **layout}
    workers = [ctx.Process(target=_client, args=(spec, i, barrier, pids, results)) for i in range(clients)]
    for worker in workers:
        worker.start()
    sampler = connect(url, autocommit=True)
    try:
        backends = [pids.get(timeout=START_TIMEOUT) for _ in workers]
        barrier.wait(timeout=START_TIMEOUT)
        samples = in_transaction = polls = 0
        events: Counter[str] = Counter()
        row_lock_by_table: Counter[str] = Counter()
        start = time.monotonic()
        deadline = start + seconds
        with sampler.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(POLL, [backends])
                polls += 1
                for state, event_type, event, tables in cursor.fetchall():
                    samples += 1
                    if state != "idle":
                        in_transaction += 1
                    events[f"{event_type}:{event}" if event_type else "running (no wait)"] += 1
                    if event_type == "Lock" and event in ROW_LOCK_EVENTS:
                        row_lock_by_table[
                            tables or "no tuple lock seen (ended by the time pg_locks was read, or a unique index)"
                        ] += 1
                time.sleep(interval)
        sampled_s = time.monotonic() - start
        rows = [results.get(timeout=seconds + START_TIMEOUT) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
    finally:
        sampler.close()
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()
    bad = [worker.exitcode for worker in workers if worker.exitcode != 0]
    if bad:
        raise RuntimeError(f"{len(bad)} client(s) failed (exit codes {bad})")
    payments = sum(row["payments"] for row in rows)
    elapsed = max(row["end"] for row in rows) - min(row["start"] for row in rows)
    kinds: Counter[str] = Counter()
    for row in rows:
        kinds.update(row["error_kinds"])
    row_locks = sum(row_lock_by_table.values())
    lock_any = sum(count for event, count in events.items() if event.startswith("Lock:"))
    return {
        "label": label,
        "clients": clients,
        "payments": payments,
        "errors": sum(row["errors"] for row in rows),
        "error_kinds": dict(kinds),
        "elapsed_s": round(elapsed, 3),
        "payments_per_s": payments / elapsed,
        "per_client_payments": [row["payments"] for row in sorted(rows, key=lambda row: row["index"])],
        "polls": polls,
        "poll_interval_ms": round(1000 * sampled_s / polls, 2) if polls else None,
        "samples": samples,
        "samples_in_transaction": in_transaction,
        "row_lock_samples": row_locks,
        "row_lock_share": row_locks / samples if samples else None,
        "row_lock_share_in_transaction": row_locks / in_transaction if in_transaction else None,
        "row_lock_samples_by_table": dict(row_lock_by_table),
        "any_lock_share": lock_any / samples if samples else None,
        "wait_events": dict(events.most_common()),
    }


def city_custody_balance() -> int:
    from escrow.models import Account
    from escrow.services import city_wide_account

    return city_wide_account(Account.Kind.CUSTODY).balance


def describe(phase: dict) -> None:
    say(
        f"  {phase['payments']} payments in {phase['elapsed_s']} s = {phase['payments_per_s']:.1f} payments/s, "
        f"{phase['errors']} failed {phase['error_kinds'] or ''}"
    )
    say(
        f"  {phase['samples']} samples ({phase['polls']} polls, one every {phase['poll_interval_ms']} ms): "
        f"row lock {100 * phase['row_lock_share']:.2f} % of all, "
        f"{100 * phase['row_lock_share_in_transaction']:.2f} % of those in a transaction; "
        f"by table {phase['row_lock_samples_by_table']}; any lock {100 * phase['any_lock_share']:.2f} %"
    )
    top = ", ".join(f"{event} {count}" for event, count in list(phase["wait_events"].items())[:6])
    say(f"  wait events: {top}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("BENCH_SERVER", DEFAULT_SERVER))
    parser.add_argument("--merchants", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="each of the two runs")
    parser.add_argument("--interval-ms", type=float, default=2.0, help="pause between two polls of pg_stat_activity")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 s each")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds = 5.0
    if args.merchants < 1 or args.clients < 1 or args.seconds <= 0:
        parser.error("--merchants, --clients and --seconds must be positive")
    return args


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def headline(before: dict, after: dict, clients: int) -> list[dict]:
    return [
        {
            "figure": f"share of samples waiting on a row lock, payments at {clients} clients, per-merchant accounts",
            "value": 100 * after["row_lock_share"],
            "unit": "%",
            "baseline": "the same load on the city-wide custody account (before)",
            "baseline_value": 100 * before["row_lock_share"],
            "target": {"on": "value", "op": "<=", "limit": 100 * TARGET_ROW_LOCK_SHARE},
        },
        {
            "figure": f"payments/s, {clients} clients, per-merchant accounts",
            "value": after["payments_per_s"],
            "unit": "payments/s",
            "baseline": "the same load on the city-wide custody account (before)",
            "baseline_value": before["payments_per_s"],
        },
    ]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    python = sys.executable
    if python.startswith(f"{REPO}{os.sep}"):
        python = os.path.relpath(python, REPO)
    command = shlex.join([python, "bench/hotrow.py", *argv])
    started = datetime.now(UTC)
    host = machine(args.server)
    load_start = uptime()
    say(f"command: {command}")
    say(f"machine: {host['nproc']} CPUs ({host['cpu']}), PostgreSQL {host['postgresql']}, Python {host['python']}")
    say(f"uptime: {load_start}")
    name = f"bench_hotrow_{os.getpid()}"
    with throwaway_database(args.server, name) as url:
        env = django_env(url, secrets.token_urlsafe(32)) | {"CELERY_BROKER_URL": "memory://"}
        os.environ.update(env)
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connections

        from escrow.selectors import ledger_ok, ledger_verify

        say("migrating")
        call_command("migrate", interactive=False, verbosity=0)
        say(f"writing {args.merchants} merchants on the city-wide accounts, a product each, {args.clients} consumers")
        layout = setup_merchants(args.merchants, args.clients)
        connections.close_all()
        common = {"url": url, "env": env, "layout": layout, "clients": args.clients, "seconds": args.seconds}
        common["interval"] = args.interval_ms / 1000
        stripes = settings.LEDGER_CHAIN_STRIPES

        say(f"before: {args.clients} clients paying on the city-wide accounts for {args.seconds} s ({uptime()})")
        before = run_phase(label="before", **common)
        describe(before)

        say("manage.py ledger_split_custody")
        t0 = time.monotonic()
        call_command("ledger_split_custody", every=max(1, args.merchants // 4))
        split_s = time.monotonic() - t0
        say(f"  split in {split_s:.1f} s")
        city_before = city_custody_balance()
        connections.close_all()

        say(f"after: {args.clients} clients paying on per-merchant accounts for {args.seconds} s ({uptime()})")
        after = run_phase(label="after", **common)
        describe(after)

        city_after = city_custody_balance()
        say("ledger_verify()")
        verified = ledger_verify()
        ok = ledger_ok(verified) and city_after == city_before
        say(
            f"  ledger ok: {ledger_ok(verified)} ({verified['entries']} entries); city-wide custody "
            f"{city_before} -> {city_after} fen during the after run"
        )
        connections.close_all()
    load_end = uptime()
    share = after["row_lock_share"]
    say(
        f"row-lock share of samples: before {100 * before['row_lock_share']:.2f} %, after {100 * share:.2f} % "
        f"(target <= {100 * TARGET_ROW_LOCK_SHARE:.0f} %: {'PASS' if share <= TARGET_ROW_LOCK_SHARE else 'MISS'}); "
        f"payments/s before {before['payments_per_s']:.1f}, after {after['payments_per_s']:.1f}"
    )
    say(f"uptime at the end: {load_end}")
    data = {
        "benchmark": "hotrow",
        "command": command,
        "date": started.isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": host | {"uptime_at_start": load_start, "uptime_at_end": load_end},
        "merchants": args.merchants,
        "clients": args.clients,
        "seconds": args.seconds,
        "chain_stripes": stripes,
        "row_lock_events": list(ROW_LOCK_EVENTS),
        "before": before,
        "split_s": round(split_s, 2),
        "after": after,
        "ledger_ok": ledger_ok(verified),
        "city_custody_unmoved_after": city_after == city_before,
        "headline": headline(before, after, args.clients),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2) + "\n")
    say(f"wrote {OUT.relative_to(REPO)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
