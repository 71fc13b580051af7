"""With several gunicorn workers, /metrics adds up every worker's request counts
(PROMETHEUS_MULTIPROC_DIR, as docker-compose sets it), whichever worker answers the scrape."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from tests.net import free_port
from tests.settlement.test_settlement_crash import database_url

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "scrape-token-for-tests-0123456789"


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def livez_count(body: str) -> float:
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "django_http_responses_total_by_status_view_method_total" and sample.labels == {
                "method": "GET",
                "status": "200",
                "view": "livez",
            }:
                return sample.value
    return 0


@pytest.mark.django_db(transaction=True)
def test_every_workers_requests_are_counted_in_each_scrape(tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),  # the test database, migrated already
        "DJANGO_DEBUG": "1",
        "VAR_DIR": str(tmp_path / "var"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
    }
    connection.close()  # let the server have an SQLite database to itself
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "3", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if get(port, "/livez")[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.2)
        with ThreadPoolExecutor(max_workers=12) as pool:  # at once, so that every worker takes some
            assert set(pool.map(lambda _: get(port, "/livez")[0], range(119))) == {200}
        pids = {path.name.rsplit("_", 1)[-1] for path in metrics_dir.glob("*.db")}
        scrapes = [get(port, "/metrics", {"Authorization": f"Bearer {TOKEN}"}) for _ in range(6)]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert len(pids) > 1, "one worker answered every request: nothing to add up"
    assert all(status == 200 for status, _ in scrapes)
    assert [livez_count(body) for _, body in scrapes] == [120] * 6
    assert "prepaid_refunds_overdue" in scrapes[0][1]
