"""Benchmark: a card's whole flow over HTTP against gunicorn on PostgreSQL.

One flow is four requests, as the apps make them: the consumer buys a card (``POST /cards``), pays
it through the sandbox bank (``POST /payments/{id}/simulate``), the merchant asks for a service
(``POST /redemptions``) and the consumer confirms it (``POST /redemptions/{id}/confirm``), each
money-moving POST with an ``Idempotency-Key``. ``--clients`` client processes run flows back to
back for ``--seconds``; the figures are complete flows per second and the p50/p99 latency of the
requests (and of whole flows).

In the same run, the same clients send the same number of requests per "flow" to ``/livez``, a
Django view that touches no database: the framework's own ceiling on this machine. The ratio of
the two says how much of that ceiling the card flow keeps.

It creates its own PostgreSQL database, migrates it, starts gunicorn on a free port, and removes
both at the end. Run: ``.venv/bin/python bench/flow.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def psql(server: str, sql: str) -> None:
    subprocess.run(["psql", f"{server}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True)


def setup_data(clients: int) -> dict:
    """Through the services: one merchant with a product, one consumer per client, API tokens."""
    import django

    django.setup()
    from rest_framework.authtoken.models import Token

    from consumers.services import consumer_register
    from merchants.registry import uscc_check_character
    from merchants.services import merchant_register, product_create

    first17 = "91110105BENCH0001"
    merchant = merchant_register(
        username="bench-merchant",
        password=secrets.token_urlsafe(16),
        name="Bench Gym",
        license_number=first17 + uscc_check_character(first17),
        category="fitness",
        district="110105",
        address="Bench Road",
    )
    product = product_create(merchant=merchant, name="100 sessions", kind="session_pack", price=500_000, sessions=100)
    consumers = [
        consumer_register(
            username=f"bench-consumer-{i}",
            password=secrets.token_urlsafe(16),
            display_name=f"C{i}",
            phone="13800000000",
        )
        for i in range(clients)
    ]
    return {
        "product": str(product.pk),
        "merchant_token": Token.objects.create(user=merchant.user).key,
        "consumer_tokens": [Token.objects.create(user=c.user).key for c in consumers],
    }


class Client:
    """One keep-alive HTTP connection; each call returns (status, body, seconds)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, token: str | None, body: dict | None = None, key: str | None = None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        if key:
            headers["Idempotency-Key"] = key
        payload = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        return response.status, data, time.perf_counter() - started


def flow(client: Client, data: dict, consumer_token: str, n: str) -> list[float]:
    latencies = []
    status, body, t = client.call("POST", "/api/v1/cards", consumer_token, {"product": data["product"]}, key=f"buy-{n}")
    assert status == 201, (status, body[:200])
    card = json.loads(body)
    latencies.append(t)
    status, body, t = client.call(
        "POST",
        f"/api/v1/payments/{card['payment']['id']}/simulate",
        consumer_token,
        {"outcome": "succeeded"},
        key=f"pay-{n}",
    )
    assert status == 200, (status, body[:200])
    latencies.append(t)
    status, body, t = client.call(
        "POST", "/api/v1/redemptions", data["merchant_token"], {"card": card["id"]}, key=f"ask-{n}"
    )
    assert status == 201, (status, body[:200])
    latencies.append(t)
    redemption = json.loads(body)
    status, body, t = client.call(
        "POST", f"/api/v1/redemptions/{redemption['id']}/confirm", consumer_token, key=f"ok-{n}"
    )
    assert status == 200 and json.loads(body)["released"] == 5_000, (status, body[:200])
    latencies.append(t)
    return latencies


def bare(client: Client, data: dict, consumer_token: str, n: str) -> list[float]:
    latencies = []
    for _ in range(4):
        status, _, t = client.call("GET", "/livez", None)
        assert status == 200, status
        latencies.append(t)
    return latencies


def worker(index, kind, port, data, start_at, seconds, queue) -> None:
    client = Client(port)
    token = data["consumer_tokens"][index]
    work = flow if kind == "flow" else bare
    work(client, data, token, f"warm-{kind}-{index}-{os.getpid()}")
    while time.time() < start_at:
        time.sleep(0.001)
    requests, flows, errors = [], [], 0
    deadline = start_at + seconds
    n = 0
    while time.time() < deadline:
        n += 1
        started = time.perf_counter()
        try:
            requests.extend(work(client, data, token, f"{kind}-{index}-{n}-{os.getpid()}"))
            flows.append(time.perf_counter() - started)
        except (AssertionError, OSError, http.client.HTTPException):
            errors += 1
    queue.put({"requests": requests, "flows": flows, "errors": errors})


def run(kind: str, clients: int, port: int, data: dict, seconds: float) -> dict:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 2.0
    procs = [ctx.Process(target=worker, args=(i, kind, port, data, start_at, seconds, queue)) for i in range(clients)]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join()
    requests = sorted(r for res in results for r in res["requests"])
    flows = sorted(f for res in results for f in res["flows"])

    def pct(values, q):
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")

    return {
        "kind": kind,
        "clients": clients,
        "flows": len(flows),
        "flows_per_s": len(flows) / seconds,
        "requests_per_s": len(requests) / seconds,
        "errors": sum(res["errors"] for res in results),
        "request_p50_ms": pct(requests, 0.50),
        "request_p99_ms": pct(requests, 0.99),
        "flow_p50_ms": pct(flows, 0.50),
        "flow_p99_ms": pct(flows, 0.99),
        "request_mean_ms": statistics.fmean(requests) * 1000 if requests else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="8", help="comma-separated client counts (default 8)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]
    command = "bench/flow.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])

    database = f"bench_flow_{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": f"{args.server}/{database}",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
        "DJANGO_DEBUG": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14"),
    }
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    psql(args.server, f'CREATE DATABASE "{database}"')
    gunicorn = None
    try:
        print(f"[flow] migrating {database}", flush=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=REPO, env=env, check=True)
        data = setup_data(max(client_counts))
        from django.db import connections

        connections.close_all()
        port = free_port()
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(args.workers), "--log-level", "warning"],
            cwd=REPO, env=env, start_new_session=True,
        )  # fmt: skip
        for _ in range(100):
            try:
                Client(port).call("GET", "/livez", None)
                break
            except OSError:
                time.sleep(0.2)
        rows = []
        for clients in client_counts:
            for kind in ("flow", "bare"):
                print(f"[flow] {kind} with {clients} clients for {args.seconds:.0f}s", flush=True)
                rows.append(run(kind, clients, port, data, args.seconds))
        print()
        header = ("clients", "flows/s", "req p50", "req p99", "flow p99", "bare flows/s", "ratio", "errors")
        print("{:>7} {:>9} {:>8} {:>8} {:>9} {:>13} {:>6} {:>6}".format(*header))
        summary = []
        for clients in client_counts:
            ours = next(r for r in rows if r["kind"] == "flow" and r["clients"] == clients)
            base = next(r for r in rows if r["kind"] == "bare" and r["clients"] == clients)
            ratio = ours["flows_per_s"] / base["flows_per_s"]
            summary.append({"clients": clients, "ratio_to_bare_view": ratio})
            print(
                f"{clients:>7} {ours['flows_per_s']:>9.1f} {ours['request_p50_ms']:>7.1f}ms "
                f"{ours['request_p99_ms']:>7.1f}ms {ours['flow_p99_ms']:>8.1f}ms {base['flows_per_s']:>13.1f} "
                f"{ratio:>6.3f} {ours['errors']:>6}"
            )
        eight = next((r for r in rows if r["kind"] == "flow" and r["clients"] == 8), None)
        if eight:
            verdict = eight["flows_per_s"] >= 80 and eight["request_p99_ms"] <= 150
            print(f"\ntarget at 8 clients: >= 80 flows/s and request p99 <= 150 ms: {'PASS' if verdict else 'MISS'}")
        print(f"reproduce: .venv/bin/python {command}")
        out = REPO / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        result = {
            "benchmark": "card flow over HTTP",
            "command": f".venv/bin/python {command}",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {"nproc": os.cpu_count(), "gunicorn_workers": args.workers},
            "rows": rows,
            "summary": summary,
        }
        (out / "flow.json").write_text(json.dumps(result, indent=2))
        return 0
    finally:
        if gunicorn is not None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        psql(args.server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
