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

It also reports the CPU time the server spent per flow, read from ``/proc`` at the start and the
end of each run: the gunicorn workers' (``app ms``) and the PostgreSQL backends' serving the
benchmark's database (``db ms``, when PostgreSQL runs on this machine). Unlike flows per second,
these hardly change when other work shares the machine, so they are the figures to compare
between versions of the code.

It creates its own PostgreSQL database, migrates it, starts gunicorn on a free port, and removes
both at the end. Run: ``.venv/bin/python bench/flow.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
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

WORKERS, WORKER_CLASS, THREADS = 4, "sync", 1


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
    from merchants.services.merchants import merchant_register, product_create

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
    """One keep-alive HTTP/1.1 connection on a plain socket; each call returns (status, body, seconds).

    The load generator shares the machine's two cores with the server it measures, so it must cost
    little: ``http.client`` parses every response's headers with the ``email`` package and took
    about 0.4-0.6 ms of CPU per request on this VM, this client about 0.1 ms. It sends the request
    bytes in one ``sendall`` and reads a response framed by ``Content-Length`` (what gunicorn sends
    for Django's responses); a server that answers ``Connection: close`` (gunicorn's sync workers)
    gets a new connection for the next request.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        if self.sock is None:
            self.sock = self._connect()
        self.sock.sendall(request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("connection closed before the response")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = dict(line.split(b":", 1) for line in lines[1:])
        headers = {name.strip().lower(): value.strip() for name, value in headers.items()}
        length = int(headers[b"content-length"])
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("connection closed in the body")
            body += chunk
        return status, body, headers.get(b"connection", b"").lower() == b"close"

    def call(self, method: str, path: str, token: str | None, body: dict | None = None, key: str | None = None):
        payload = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(payload)}"]
        if body is not None:
            head.append("Content-Type: application/json")
        if token:
            head.append(f"Authorization: Token {token}")
        if key:
            head.append(f"Idempotency-Key: {key}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode() + payload
        started = time.perf_counter()
        try:
            status, data, close = self._exchange(request)
        except (OSError, ValueError, KeyError, IndexError) as exc:
            if self.sock is not None:
                self.sock.close()
            self.sock = None
            raise OSError(f"bad or no response: {exc}") from exc
        if close:
            self.sock.close()
            self.sock = None
        return status, data, time.perf_counter() - started


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
        except (AssertionError, OSError):
            errors += 1
    queue.put({"requests": requests, "flows": flows, "errors": errors})


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_ticks() -> tuple[int, int]:
    """This machine's (steal, total) CPU ticks so far, from ``/proc/stat``'s ``cpu`` line.

    Steal is time the hypervisor gave this virtual machine's CPUs to someone else: work of other
    machines on the same host, which no process here sees. A run with steal is slower for a reason
    the code does not control, and its CPU per flow is inflated too (caches shared with neighbours).
    """
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return fields[7], sum(fields)


def _children(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


class ServerCpu:
    """CPU seconds of the gunicorn workers and of the PostgreSQL backends serving ``database``."""

    def __init__(self, *, gunicorn_pid: int, server: str, database: str) -> None:
        self.gunicorn_pid, self.server, self.database = gunicorn_pid, server, database

    def _backends(self) -> list[int]:
        found = subprocess.run(
            ["psql", f"{self.server}/postgres", "-Atc",
             f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.database}'"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return [int(line) for line in found.stdout.split()]

    def snapshot(self) -> dict:
        return {
            "ticks": _cpu_ticks(),
            "app": {pid: _cpu_seconds(pid) for pid in _children(self.gunicorn_pid)},
            "db": {pid: _cpu_seconds(pid) for pid in self._backends()},
        }

    @staticmethod
    def spent(before: dict, after: dict, side: str) -> float:
        return sum(max(0.0, seconds - before[side].get(pid, 0.0)) for pid, seconds in after[side].items())


def run(kind: str, clients: int, port: int, data: dict, seconds: float, cpu: ServerCpu) -> dict:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 2.0
    procs = [ctx.Process(target=worker, args=(i, kind, port, data, start_at, seconds, queue)) for i in range(clients)]
    for proc in procs:
        proc.start()
    time.sleep(max(0.0, start_at - time.time()))
    before = cpu.snapshot()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    after = cpu.snapshot()
    for proc in procs:
        proc.join()
    requests = sorted(r for res in results for r in res["requests"])
    flows = sorted(f for res in results for f in res["flows"])

    def pct(values, q):
        return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")

    per_flow = 1000 / max(1, len(flows))
    steal = after["ticks"][0] - before["ticks"][0]
    total = max(1, after["ticks"][1] - before["ticks"][1])
    return {
        "steal_pct": 100 * steal / total,
        "kind": kind,
        "clients": clients,
        "flows": len(flows),
        "app_cpu_ms_per_flow": ServerCpu.spent(before, after, "app") * per_flow,
        "db_cpu_ms_per_flow": ServerCpu.spent(before, after, "db") * per_flow,
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
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"gunicorn worker processes (default {WORKERS})")
    parser.add_argument(
        "--worker-class", default=WORKER_CLASS, help=f"gunicorn worker class: sync or gthread (default {WORKER_CLASS})"
    )
    parser.add_argument("--threads", type=int, default=THREADS, help=f"threads per gthread worker (default {THREADS})")
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
        # Plain HTTP on 127.0.0.1, as behind the TLS-terminating proxy of a deployment.
        "DJANGO_SECURE_SSL_REDIRECT": "0",
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
             "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
             "--log-level", "warning"],
            cwd=REPO, env=env, start_new_session=True,
            # The access log (core.access: a JSON line a request, on stdout) is written, then
            # dropped: a reader of it would spend the two CPUs the server is measured on.
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        cpu = ServerCpu(gunicorn_pid=gunicorn.pid, server=args.server, database=database)
        load_before = os.getloadavg()[0]
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
                rows.append(run(kind, clients, port, data, args.seconds, cpu))
        load_after = os.getloadavg()[0]
        print()
        header = ("clients", "flows/s", "req p50", "req p99", "flow p99", "bare flows/s", "ratio", "errors")
        print("{:>7} {:>9} {:>8} {:>8} {:>9} {:>13} {:>6} {:>6}  app ms  db ms  (server CPU per flow)".format(*header))
        summary = []
        for clients in client_counts:
            ours = next(r for r in rows if r["kind"] == "flow" and r["clients"] == clients)
            base = next(r for r in rows if r["kind"] == "bare" and r["clients"] == clients)
            ratio = ours["flows_per_s"] / base["flows_per_s"]
            summary.append({"clients": clients, "ratio_to_bare_view": ratio})
            print(
                f"{clients:>7} {ours['flows_per_s']:>9.1f} {ours['request_p50_ms']:>7.1f}ms "
                f"{ours['request_p99_ms']:>7.1f}ms {ours['flow_p99_ms']:>8.1f}ms {base['flows_per_s']:>13.1f} "
                f"{ratio:>6.3f} {ours['errors']:>6}  "
                f"{ours['app_cpu_ms_per_flow']:>6.1f} {ours['db_cpu_ms_per_flow']:>6.1f}"
                f"  {ours['steal_pct']:>30.1f}"
            )
            summary[-1].update(
                app_cpu_ms_per_flow=ours["app_cpu_ms_per_flow"],
                db_cpu_ms_per_flow=ours["db_cpu_ms_per_flow"],
                steal_pct=ours["steal_pct"],
            )
        bare_app = statistics.fmean(r["app_cpu_ms_per_flow"] for r in rows if r["kind"] == "bare")
        print(f"bare view: {bare_app:.1f} ms of gunicorn CPU per 4 requests")
        print(f"load average (1 min) before {load_before:.2f}, after {load_after:.2f}, on {os.cpu_count()} CPUs")
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
            "machine": {
                "nproc": os.cpu_count(),
                "gunicorn_workers": args.workers,
                "gunicorn_worker_class": args.worker_class,
                "gunicorn_threads": args.threads,
                "load_average_1min": [load_before, load_after],
            },
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
