"""Benchmark: the chaos test's workload (``tests/chaos/workload.py``) as a load, over HTTP against
gunicorn and a Celery worker on PostgreSQL.

``--clients`` client threads each act as one consumer (with the merchants' and the regulator's
tokens) and send random valid and invalid operations of every kind back to back for
``--seconds``: purchases, sandbox payments, services asked for, confirmed and rejected, refunds of
each reason, regulator flags, freezes and refund orders, replays and reused idempotency keys, other
parties' ids, malformed bodies. The figure is operations (HTTP requests) per second.

In the same run, the same clients send ``GET /livez`` (a Django view that touches no database) for
as long: the framework's own ceiling on this machine. The ratio of the two says how much of it the
workload keeps. Afterwards the ledger is verified; any 5xx, unexpected status or failed check makes
the run exit 1.

It creates its own PostgreSQL database, migrates it, makes the merchants, consumers and tokens
through the services, starts gunicorn and the worker (on ``--broker``, a queue of its own), and
removes everything at the end. Run: ``.venv/bin/python bench/workload.py`` (``--help`` for
options); results go to bench/out/workload.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import DEFAULT_SERVER, machine, say, throwaway_database  # noqa: E402
from tests.chaos.stack import Stack, server_env  # noqa: E402
from tests.chaos.workload import baseline_run, workload_run, world_build  # noqa: E402

DEFAULT_BROKER = "redis://127.0.0.1:6379/12"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds of each run (default 30)")
    parser.add_argument("--clients", type=int, default=6, help="client threads (default 6)")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="the workload's random seed (default: a new one)")
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"PostgreSQL server (default {DEFAULT_SERVER})")
    parser.add_argument("--broker", default=os.environ.get("CELERY_BROKER_URL", DEFAULT_BROKER))
    args = parser.parse_args()
    command = ".venv/bin/python bench/workload.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    with throwaway_database(args.server, f"bench_workload_{os.getpid()}") as url:
        env = server_env(url, CELERY_BROKER_URL=args.broker)
        say("migrating")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SECRET_KEY", "DJANGO_DEBUG")})
        os.environ.update(CELERY_BROKER_URL=args.broker, DJANGO_SETTINGS_MODULE="config.settings")
        import django

        django.setup()
        from django.db import connections

        from escrow.selectors import ledger_ok, ledger_verify

        world = world_build(merchants=3, consumers=args.clients, tag="bench")
        connections.close_all()
        host = machine(args.server, args.broker)
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="bench-workload-") as logs:
            stack = Stack(env=env, logs=Path(logs), gunicorn_workers=args.workers)
            with stack:
                say(f"workload: {args.clients} clients for {args.seconds:.0f}s against {stack.base_url}")
                report = workload_run(
                    base_url=stack.base_url, world=world, seconds=args.seconds, clients=args.clients, seed=args.seed
                )
                say(f"baseline: {args.clients} clients on /livez for {args.seconds:.0f}s")
                bare = baseline_run(base_url=stack.base_url, seconds=args.seconds, clients=args.clients)
            stack.queue_delete()
        load_after = os.getloadavg()[0]
        verified = ledger_verify()
        connections.close_all()

    ops, livez = report.total / report.seconds, bare.total / bare.seconds
    ratio = ops / livez if livez else float("nan")
    failures = report.failures + bare.failures
    print()
    print(report.table())
    print()
    print(f"workload   {ops:8.1f} operations/s  ({report.total} in {report.seconds:.1f}s, {args.clients} clients)")
    print(f"/livez     {livez:8.1f} requests/s    ({bare.total} in {bare.seconds:.1f}s)")
    print(f"ratio      {ratio:8.3f}")
    print(f"seed {report.seed}; failures {len(failures)}; ledger verifies: {ledger_ok(verified)}")
    for failure in failures[:10]:
        print(f"  {failure}")
    print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}, on {host['nproc']} CPUs")
    print(f"reproduce: {command} --seed {report.seed}")

    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    calls: dict[str, dict[str, int]] = {}
    for (kind, status), n in sorted(report.calls.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        calls.setdefault(kind, {})[str(status)] = n
    result = {
        "benchmark": "chaos workload over HTTP",
        "command": command,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**host, "gunicorn_workers": args.workers, "load_average_1min": [load_before, load_after]},
        "seed": report.seed,
        "clients": args.clients,
        "seconds": args.seconds,
        "operations": report.total,
        "operations_per_s": ops,
        "livez_requests": bare.total,
        "livez_per_s": livez,
        "ratio_to_livez": ratio,
        "calls": calls,
        "failures": failures,
        "ledger": {k: v for k, v in verified.items() if k != "problems"} | {"problems": verified["problems"][:20]},
    }
    (out / "workload.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return 0 if not failures and ledger_ok(verified) else 1


if __name__ == "__main__":
    sys.exit(main())
