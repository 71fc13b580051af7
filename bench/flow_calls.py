"""Benchmark: what one card flow costs the server, counted rather than timed.

``bench/flow.py`` times flows over HTTP; its figures move with whatever else runs on the machine.
This one runs the same four requests (buy, pay through the sandbox bank, the merchant's service
request, the consumer's confirmation, each with an ``Idempotency-Key``) in process, through
Django's whole handler and middleware stack, and counts per flow:

- the Python function calls (``cProfile``), which do not depend on the machine's load;
- the statements sent to PostgreSQL (psycopg2 ``execute`` calls: round trips);
- the CPU time of this process and of its PostgreSQL backend (from ``/proc``), which do, a little.

``--repo`` points it at another checkout (for example a worktree of an older commit), so that two
versions of the code are counted by the same script, one after the other. It creates a throwaway
database, migrates it with that checkout's ``manage.py``, and drops it at the end. It needs
PostgreSQL on this machine (for the backend's CPU) and never runs under ``make test``.

Run: ``.venv/bin/python bench/flow_calls.py [--repo PATH] [--flows 200]``.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import secrets
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def psql(server: str, statement: str) -> None:
    subprocess.run(["psql", f"{server}/postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", statement], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(HERE), help="the checkout to count (default: this one)")
    parser.add_argument("--flows", type=int, default=200, help="flows counted (default 200; 30 more warm up)")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument(
        "--statements", action="store_true", help="also time each statement (wall time per flow, by its text)"
    )
    args = parser.parse_args()
    repo = Path(args.repo).resolve()
    os.chdir(repo)
    sys.path.insert(0, str(repo))
    database = f"bench_flow_calls_{os.getpid()}"
    os.environ.update(
        {
            "DATABASE_URL": f"{args.server}/{database}",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "DJANGO_DEBUG": "0",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DJANGO_SECURE_SSL_REDIRECT": "0",
            "DJANGO_ALLOWED_HOSTS": "testserver,127.0.0.1",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    psql(args.server, f'CREATE DATABASE "{database}"')
    try:
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True)
        from bench.flow import setup_data  # the checkout's own: the same merchant, product and consumer

        data = setup_data(1)
        count(repo, data, args.flows, statements=args.statements)
    finally:
        from django.db import connections

        connections.close_all()
        psql(args.server, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def count(repo: Path, data: dict, flows: int, *, statements: bool = False) -> None:
    from django.db import connection
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    consumer = {"HTTP_AUTHORIZATION": "Token " + data["consumer_tokens"][0]}
    merchant = {"HTTP_AUTHORIZATION": "Token " + data["merchant_token"]}

    def post(path: str, body: dict, key: str, who: dict, expected: int) -> dict:
        response = client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key, **who)
        assert response.status_code == expected, (path, response.status_code, response.content[:200])
        return response.json()

    def flow(n: str) -> None:
        card = post("/api/v1/cards", {"product": data["product"]}, f"buy-{n}", consumer, 201)
        post(f"/api/v1/payments/{card['payment']['id']}/simulate", {"outcome": "succeeded"}, f"pay-{n}", consumer, 200)
        asked = post("/api/v1/redemptions", {"card": card["id"]}, f"ask-{n}", merchant, 201)
        confirmed = post(f"/api/v1/redemptions/{asked['id']}/confirm", {}, f"ok-{n}", consumer, 200)
        assert confirmed["released"] == 5_000, confirmed

    for i in range(30):
        flow(f"warm-{i}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    def backend_cpu_ms() -> float:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")

    db_before, cpu_before = backend_cpu_ms(), time.process_time()
    for i in range(flows):
        flow(f"timed-{i}")
    app_ms = (time.process_time() - cpu_before) * 1000 / flows
    db_ms = (backend_cpu_ms() - db_before) / flows

    profile = cProfile.Profile()
    profile.enable()
    for i in range(flows):
        flow(f"counted-{i}")
    profile.disable()
    stats = pstats.Stats(profile).stats
    calls = sum(entry[1] for entry in stats.values())
    statements = sum(
        entry[1]
        for key, entry in stats.items()
        if key[2] == "<method 'execute' of 'psycopg2.extensions.cursor' objects>"
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    load = os.getloadavg()[0]
    print(f"checkout {repo} at {commit}, {flows} flows")
    print(f"python calls per flow     {calls / flows:10,.0f}")
    print(f"statements per flow       {statements / flows:10.1f}")
    print(f"CPU per flow: app {app_ms:.2f} ms, PostgreSQL backend {db_ms:.2f} ms (load average {load:.2f})")
    if statements:
        timed_statements(flow, flows)
    option = " --statements" if statements else ""
    print(f"reproduce: .venv/bin/python bench/flow_calls.py --repo {repo} --flows {flows}{option}")


def timed_statements(flow, flows: int) -> None:
    """Each statement's wall time per flow (sent to the reply read), by its first 100 characters:
    where the database's part of a flow goes, one client, no contention."""
    import re
    from collections import Counter, defaultdict

    from django.db import connection

    spent: defaultdict[str, float] = defaultdict(float)
    sent: Counter[str] = Counter()

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            text = re.sub(r"\s+", " ", sql)[:100]
            spent[text] += time.perf_counter() - started
            sent[text] += 1

    with connection.execute_wrapper(timed):
        for i in range(flows):
            flow(f"statements-{i}")
    print(f"statement wall time per flow {sum(spent.values()) * 1000 / flows:.2f} ms, by statement:")
    for text, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {seconds * 1000 / flows:7.3f} ms  {sent[text] / flows:5.2f}x  {text}")


if __name__ == "__main__":
    main()
