"""Plumbing of the fault tests: servers of the test's own (a Redis, a PostgreSQL cluster) that it may
stop and start without touching the machine's shared ones, gunicorn and Celery worker subprocesses
that can be SIGKILLed as a whole process group, and a plain HTTP client for the API."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery import Celery
from kombu import Connection

from tests.net import free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_until(condition: Callable[[], Any], *, timeout: float, message: Callable[[], str], interval: float = 0.1):
    """Poll ``condition`` until it returns something true, and return that; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout}s: {message()}")
        time.sleep(interval)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# --- subprocesses --------------------------------------------------------------------------------


@dataclass
class Proc:
    """A subprocess in its own session, so that a kill reaches every process it forked (the
    prefork pool of a Celery worker, gunicorn's workers)."""

    process: subprocess.Popen
    log: Path

    @classmethod
    def spawn(cls, command: list[str], *, env: dict[str, str], log: Path) -> Proc:
        with log.open("ab") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return cls(process=process, log=log)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole group, as the OOM killer or a lost machine would."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL whatever is still there."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=20)
        self._signal_group(signal.SIGKILL)  # stragglers of the group, if any
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def service_env(*, database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    """The environment of a production-like gunicorn or worker on these servers."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
        "DJANGO_SECURE_SSL_REDIRECT": "0",  # plain HTTP on 127.0.0.1, as behind the TLS proxy
        "DJANGO_LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("FAULT_KILL_AT", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def start_worker(*, env: dict[str, str], log: Path) -> Proc:
    """``celery -A config worker`` (the prefork pool, one process), ready to take tasks."""
    worker = Proc.spawn(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1",
         "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "INFO"],
        env=env, log=log,
    )  # fmt: skip
    wait_until(
        lambda: "ready." in worker.tail(100_000) or worker.process.poll() is not None,
        timeout=60,
        message=lambda: f"the worker did not start:\n{worker.tail()}",
    )
    assert worker.process.poll() is None, f"the worker died:\n{worker.tail()}"
    return worker


def start_gunicorn(*, env: dict[str, str], log: Path, workers: int = 2) -> tuple[Proc, int]:
    port = free_port()
    server = Proc.spawn(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--timeout", "60", "--log-level", "warning"],
        env=env, log=log,
    )  # fmt: skip
    wait_until(
        lambda: port_open(port) or server.process.poll() is not None,
        timeout=60,
        message=lambda: f"gunicorn did not start:\n{server.tail()}",
    )
    assert server.process.poll() is None, f"gunicorn died:\n{server.tail()}"
    return server, port


def send_task(broker_url: str, name: str, *args: Any) -> None:
    """Put a task on ``broker_url``'s default queue, as beat or a service's ``.delay`` would."""
    # An explicit connection: Celery prefers the environment's CELERY_BROKER_URL (the shared broker
    # the test run was given) to the app's own ``broker``.
    # Not the current app: tasks the test process itself queues afterwards must still go through
    # config.celery's app (eager under the tests), not this producer.
    producer = Celery("fault-tests", set_as_current=False)
    try:
        with Connection(broker_url) as connection:
            producer.send_task(name, args=list(args), connection=connection)
    finally:
        producer.close()


# --- a Redis of the test's own -------------------------------------------------------------------


@dataclass
class PrivateRedis:
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = Proc.spawn(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.workdir)],
            env=dict(os.environ), log=self.workdir / "redis.log",
        )  # fmt: skip
        wait_until(lambda: port_open(self.port), timeout=20, message=lambda: self.proc.tail())

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc = None

    def queued(self, queue: str = "celery") -> int:
        """Messages waiting in ``queue`` (a Redis list)."""
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            return client.llen(queue)
        finally:
            client.close()


# --- a PostgreSQL cluster of the test's own ------------------------------------------------------


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


class PrivatePostgres:
    """A throwaway cluster (trust auth, no fsync) on a free port, run by the ``postgres`` user when
    the tests run as root, so that the test can stop it (``-m immediate``: a crash) and start it."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, user="postgres", group="postgres")

    @staticmethod
    def available() -> bool:
        return _pg_bin() is not None

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=self.dir)

    def _check(self, done: subprocess.CompletedProcess) -> None:
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]

    def init(self) -> None:
        self._check(self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"))

    def start(self, **settings: str) -> None:
        """Start the server; ``settings`` are more ``-c name=value`` (``synchronous_standby_names``)."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        options += "".join(f" -c {name}={value}" for name, value in settings.items())
        self._check(
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options, "-w", "start")
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def init_standby_of(self, primary: PrivatePostgres, *, name: str = "standby") -> None:
        """This cluster as a streaming replica of ``primary``: a base backup that writes the
        standby's settings (``-R``: ``standby.signal`` and ``primary_conninfo``), the standby
        known to the primary by ``name`` (``application_name``, what ``synchronous_standby_names``
        names). ``--checkpoint=fast``: the default spread checkpoint paces its writes over minutes
        (about 90 s for the pages a fresh ``createdb`` dirtied), which a throwaway cluster does not need."""
        conninfo = f"host=127.0.0.1 port={primary.port} user=postgres application_name={name}"
        self._check(
            self._run(
                "pg_basebackup", "-d", conninfo, "-D", str(self.data), "-R", "-X", "stream", "--checkpoint=fast",
                "--no-sync",
            )
        )  # fmt: skip

    def promote(self) -> None:
        """End a standby's recovery: it becomes a primary that takes writes."""
        self._check(self._run("pg_ctl", "-D", str(self.data), "-w", "promote"))

    def query(self, sql: str, database: str = "postgres") -> list[tuple]:
        import psycopg2

        db = psycopg2.connect(self.url(database))
        try:
            db.autocommit = True
            with db.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall() if cursor.description else []
        finally:
            db.close()

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def createdb(self, name: str) -> None:
        self._check(self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name))

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def clusters_available_or_skip() -> None:
    """Skip a test that needs clusters of its own where PostgreSQL's server binaries are missing
    (fail instead under ``REQUIRE_POSTGRES=1``)."""
    import pytest

    if not PrivatePostgres.available():
        message = "needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) for clusters of the test's own"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def primary_with_standby(*, synchronous: bool = False):
    """A primary with database ``platform`` and its streaming standby (``standby1``), removed at
    the end. ``synchronous``: a commit on the primary returns once the standby has its WAL on disk."""
    clusters_available_or_skip()
    primary, standby = PrivatePostgres(), PrivatePostgres()
    try:
        primary.init()
        primary.start()
        primary.createdb("platform")
        standby.init_standby_of(primary, name="standby1")
        standby.start()
        if synchronous:
            primary.query("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
            primary.query("ALTER SYSTEM SET synchronous_commit = 'on'")
            primary.query("SELECT pg_reload_conf()")
            wait_until(
                lambda: primary.query("SELECT sync_state FROM pg_stat_replication") == [("sync",)],
                timeout=30,
                message=lambda: f"the standby is not synchronous: {primary.query('SELECT * FROM pg_stat_replication')}",
            )
        yield primary, standby
    finally:
        standby.remove()
        primary.remove()


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: Any
    content_type: str

    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def call(port: int, method: str, path: str, *, token: str | None = None, body: Any = None, key: str | None = None,
         timeout: float = 30) -> Answer:  # fmt: skip
    headers = {"Content-Type": "application/json", "Accept-Language": "en"}
    if token:
        headers["Authorization"] = f"Token {token}"
    if key:
        headers["Idempotency-Key"] = key
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        content_type = response.getheader("Content-Type", "")
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Answer(status=response.status, body=parsed, content_type=content_type)


def token_for(port: int, username: str, password: str) -> str:
    answer = call(port, "POST", "/api/v1/auth/token", body={"username": username, "password": password})
    assert answer.status == 200, answer
    return answer.body["token"]


def card_bought_and_paid(port: int, *, consumer: str, product: str, key: str) -> list[Answer]:
    """A consumer buys a card and pays it through the sandbox bank: the answers, in order."""
    bought = call(port, "POST", "/api/v1/cards", token=consumer, body={"product": product}, key=f"buy-{key}")
    if bought.status != 201:
        return [bought]
    paid = call(
        port, "POST", f"/api/v1/payments/{bought.body['payment']['id']}/simulate", token=consumer,
        body={"outcome": "succeeded"}, key=f"pay-{key}",
    )  # fmt: skip
    return [bought, paid]


def service_confirmed(port: int, *, consumer: str, merchant: str, card: str, key: str) -> list[Answer]:
    """The merchant starts a service on the card and the consumer confirms it: the answers."""
    started = call(port, "POST", "/api/v1/redemptions", token=merchant, body={"card": card})
    if started.status != 201:
        return [started]
    confirmed = call(
        port, "POST", f"/api/v1/redemptions/{started.body['id']}/confirm", token=consumer, key=f"confirm-{key}"
    )
    return [started, confirmed]
