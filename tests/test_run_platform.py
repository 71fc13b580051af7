"""`make run` serves the platform: web, a Celery worker and Celery beat on the embedded broker,
all three really running, and one Ctrl-C stops them all."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def _children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.fixture
def embedded_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REQUIRE_POSTGRES"}}
    env.update(
        {"DJANGO_DEBUG": "1", "VAR_DIR": str(tmp_path / "var"), "HEARTBEAT_SECONDS": "2", "PYTHONUNBUFFERED": "1"}
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    return env


def test_run_serves_health_with_worker_and_beat_running_and_ctrl_c_stops_all(embedded_env, tmp_path):
    port = _free_port()
    log = (tmp_path / "platform.log").open("w")
    platform = subprocess.Popen(
        [sys.executable, "manage.py", "runplatform", "--bind", f"127.0.0.1:{port}", "--web-workers", "1"],
        cwd=ROOT,
        env=embedded_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline:
            health = _get_json(f"http://127.0.0.1:{port}/healthz")
            # worker_last_seen is written by the worker running a task that beat scheduled.
            if health and health.get("worker_last_seen"):
                break
            assert platform.poll() is None, (tmp_path / "platform.log").read_text()
            time.sleep(0.5)
        assert health is not None, (tmp_path / "platform.log").read_text()
        assert health["status"] == "ok" and health["database"] == "ok" and health["broker"] == "embedded"
        assert health["worker_last_seen"], (tmp_path / "platform.log").read_text()
        children = _children_of(platform.pid)
        assert len(children) == 3

        platform.send_signal(signal.SIGINT)
        assert platform.wait(timeout=30) == 0
        time.sleep(0.5)
        assert not [pid for pid in children if _alive(pid)]
        assert _get_json(f"http://127.0.0.1:{port}/healthz") is None
    finally:
        if platform.poll() is None:
            platform.kill()
        for pid in children:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
        log.close()
