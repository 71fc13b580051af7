"""`make run` serves the platform: web, a Celery worker and Celery beat on the embedded broker,
all three really running, and one Ctrl-C stops them all."""

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.net import free_port, get_json, platform_start

ROOT = Path(__file__).resolve().parent.parent


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


def test_run_serves_health_with_worker_and_beat_running_and_ctrl_c_stops_all(embedded_env, tmp_path):
    port = free_port()
    log = (tmp_path / "platform.log").open("w")
    platform = platform_start(env=embedded_env, port=port, log=log)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline:
            health = get_json(f"http://127.0.0.1:{port}/healthz")
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
        assert get_json(f"http://127.0.0.1:{port}/healthz") is None
    finally:
        if platform.poll() is None:
            platform.kill()
        for pid in children:
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
        log.close()
