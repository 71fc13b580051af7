"""Browser tests: Playwright (sync API) drives Debian's Chromium, launched by path (nothing is
downloaded), against pytest-django's ``live_server`` on the transactional test database.

Without Chromium at ``/usr/bin/chromium`` the tests are skipped, saying why; under
``REQUIRE_BROWSER=1`` (CI) they fail instead. Each test saves screenshots of its key steps under
``SCREENSHOT_DIR`` (default ``var/screenshots/``), in a folder named after the test.

Playwright's sync API keeps an asyncio loop running in this thread while it is started, and Django
refuses ORM calls from a thread with a running loop. The tests' own ORM calls are plain synchronous
calls made between browser steps, so the ``browser`` fixture allows them (``DJANGO_ALLOW_ASYNC_UNSAFE``)
while Playwright runs, and when the test ends closes the connections they opened, stops Playwright
and restores the variable: the rest of the suite keeps Django's check and never sees the loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.db import connections
from playwright.sync_api import Error, sync_playwright

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, ROOT, SCREENSHOT_DIR, Browser, Worker, unavailable
from tests.celery_worker import WORKER_MAIN


@pytest.fixture
def browser(request, transactional_db, live_server) -> Iterator[Browser]:
    # The database first: at the end of the session the live server (and its connections) stops
    # before the test database is dropped.
    if not os.access(CHROMIUM, os.X_OK):
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    shots = SCREENSHOT_DIR / request.node.name
    shots.mkdir(parents=True, exist_ok=True)
    for old in shots.glob("*.png"):
        old.unlink()
    unsafe = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Error as exc:
            unavailable(f"Chromium at {CHROMIUM} did not start: {exc}")
        try:
            yield Browser(browser=chromium, base_url=live_server.url, shots=shots)
        finally:
            chromium.close()
    finally:
        # While Playwright's loop runs, Django keeps this thread's connections apart from the ones
        # it has without a loop (asgiref's Local): close those the test opened, or they would
        # stay open (PostgreSQL then refuses to drop the test database).
        connections.close_all()
        playwright.stop()
        if unsafe is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = unsafe


def database_url() -> str:
    """The live test database (SQLite's test file or PostgreSQL's test database), for the worker."""
    from tests.settlement.test_settlement_crash import database_url as test_database_url

    return test_database_url()


@pytest.fixture
def celery_worker(transactional_db, tmp_path) -> Iterator[Worker]:
    """A Celery worker in a subprocess, on the live test database and this process's broker (the
    env's ``CELERY_BROKER_URL``, or the embedded one under ``VAR_DIR``; the worker inherits both).
    While it runs, the tasks of this process (the live server's thread included) go through the
    broker instead of running inline, to a queue of this run's own, so that no other worker on the
    same broker (``make run`` on the same ``var/``) takes them and nothing left in the default
    queue reaches this one."""
    from django.db import connection
    from kombu import Queue

    from config.celery import app
    from core.queues import bulk_queue

    queue = f"browser-tests-{os.getpid()}"
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_DEBUG": "1",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DJANGO_LOG_LEVEL": "WARNING",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    command = [sys.executable, "-c", WORKER_MAIN, queue]
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    connection.close()  # SQLite: no transaction of this process stands in the worker's way
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    worker = Worker(process=process, queue=queue, log=log)
    try:
        yield worker
    finally:
        app.conf.changes.pop("task_always_eager", None)
        app.conf.changes.pop("task_default_queue", None)
        worker.stop()
        with app.connection_for_write() as broker:  # the queues, their bindings and anything left in them
            for name in (queue, bulk_queue(queue)):
                bound = Queue(name).bind(broker.default_channel)
                bound.declare()  # makes the binding known to this channel, so that delete removes it too
                bound.delete()
