"""The platform as deployed, for the chaos test and ``bench/workload.py``: gunicorn and a Celery
worker, each a subprocess, on a given database and broker; or, with ``instances=2``, two gunicorn
instances behind haproxy (Debian's package) and two workers, one for the bulk queue alone.

Both send their tasks to a queue of this run's own (the command lines have no option for it, so
each starts from a few lines of Python that set ``task_default_queue`` first): no other worker on
the same broker (``make run``, another test) takes them, and nothing left in the default queue
reaches this one.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.celery_worker import WORKER_MAIN
from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]

GUNICORN_MAIN = """
import sys
from config.celery import app
app.conf.task_default_queue = sys.argv[1]
from gunicorn.app.wsgiapp import run
sys.argv = ["gunicorn", "config.wsgi:application", *sys.argv[2:]]
run()
"""


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Django as in production (debug off) on ``database_url``, plain HTTP on 127.0.0.1 as behind
    the TLS-terminating proxy; the broker is the environment's (``CELERY_BROKER_URL``)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PAYMENT_GATEWAY": "local",
        **extra,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


class Stack:
    """``with Stack(env=..., logs=dir) as stack:`` serves ``stack.base_url`` until the block ends."""

    def __init__(
        self, *, env: dict[str, str], logs: Path, gunicorn_workers: int = 3, worker: bool = True, instances: int = 1
    ) -> None:
        self.env, self.logs, self.gunicorn_workers, self.with_worker = env, logs, gunicorn_workers, worker
        self.instances = instances
        self.queue = f"chaos-{os.getpid()}-{secrets.token_hex(3)}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.processes: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("wb") as out:
            return subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _gunicorn(self, name: str, port: int) -> None:
        self.processes[name] = self._start(
            name,
            [sys.executable, "-c", GUNICORN_MAIN, self.queue, "--bind", f"127.0.0.1:{port}",
             "--workers", str(self.gunicorn_workers), "--timeout", "120", "--log-level", "warning",
             "--access-logfile", str(self.logs / f"{name}.access.log")],
        )  # fmt: skip

    def __enter__(self) -> Stack:
        try:
            if self.instances == 1:
                self._gunicorn("gunicorn", self.port)
                if self.with_worker:
                    self.processes["worker"] = self._start("worker", [sys.executable, "-c", WORKER_MAIN, self.queue])
            else:
                ports = [free_port() for _ in range(self.instances)]
                for n, port in enumerate(ports, 1):
                    self._gunicorn(f"gunicorn{n}", port)
                for port in ports:  # every instance up before the balancer's first check
                    self._wait_until_up(port=port)
                self.processes["haproxy"] = self._start("haproxy", ["haproxy", "-db", "-f", str(self._haproxy(ports))])
                if self.with_worker:
                    for only in ("default", "bulk"):
                        command = [sys.executable, "-c", WORKER_MAIN, self.queue, only]
                        self.processes[f"worker-{only}"] = self._start(f"worker-{only}", command)
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self

    def _haproxy(self, ports: list[int]) -> Path:
        """haproxy's configuration: round robin over the instances, each checked on ``/livez``; a
        request whose instance went away is tried on another (``retries``, ``redispatch``). A check
        waits as long as a request may (a busy instance answers late, it is not down) and an
        instance is taken out only after five failed checks in a row."""
        servers = "\n".join(f"    server web{n} 127.0.0.1:{port} check" for n, port in enumerate(ports, 1))
        path = self.logs / "haproxy.cfg"
        path.write_text(
            "defaults\n    mode http\n    timeout connect 5s\n    timeout client 120s\n    timeout server 120s\n"
            "    timeout check 30s\n    retries 3\n    option redispatch\n"
            "    default-server inter 1s fall 5 rise 1\n"
            f"frontend platform\n    bind 127.0.0.1:{self.port}\n    default_backend web\n"
            "backend web\n    balance roundrobin\n    option httpchk GET /livez\n"
            f"{servers}\n"
        )
        return path

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_until_up(self, timeout: float = 60, *, port: int | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}):\n{self.tail(name)}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=5)
                conn.request("GET", "/livez")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"the platform did not answer /livez in {timeout}s:\n{self.tail(next(iter(self.processes)))}"
        )

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def tails(self, lines: int = 20) -> str:
        return "\n".join(f"--- {name}\n{self.tail(name, lines)}" for name in self.processes)

    def alive(self) -> bool:
        return all(process.poll() is None for process in self.processes.values())

    def stop(self) -> None:
        """SIGTERM to each process group (gunicorn's workers, the Celery worker), SIGKILL if it lingers."""
        for process in self.processes.values():
            if process.poll() is not None:
                continue
            os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def queue_delete(self) -> None:
        """Remove this run's queue and its binding from the broker (Django set up in this process)."""
        from kombu import Queue

        from config.celery import app
        from core.queues import bulk_queue

        with app.connection_for_write() as broker:
            for name in (self.queue, bulk_queue(self.queue)):
                bound = Queue(name).bind(broker.default_channel)
                bound.declare()  # makes the binding known to this channel, so that delete removes it too
                bound.delete()
