"""JSON log lines with the request id: each request has one (its own X-Request-ID if sane, else a
new one), the response carries it back, every line logged meanwhile carries it, and so does a
Celery task the request enqueued, in the worker that runs it."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client, RequestFactory

from core.logging import JsonFormatter, RequestIdFilter, logging_config, request_id_get, request_id_var
from core.middleware import RequestIdMiddleware

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def json_logs():
    """Logging configured as LOG_FORMAT=json; yields the lines written (the access log's stdout and
    the application's stderr), each parsed."""
    logging.config.dictConfig(logging_config(log_format="json", level="INFO"))
    out = io.StringIO()
    handlers = [logging.getLogger("core.access").handlers[0], logging.getLogger().handlers[0]]
    originals = [handler.setStream(out) for handler in handlers]

    def lines() -> list[dict]:
        return [json.loads(line) for line in out.getvalue().splitlines()]

    try:
        yield lines
    finally:
        for handler, stream in zip(handlers, originals, strict=True):
            handler.setStream(stream)
        logging.config.dictConfig(settings.LOGGING)


@pytest.mark.django_db
def test_a_requests_log_lines_are_json_carrying_the_request_id_of_its_response(json_logs):
    response = Client().get("/api/v1/no-such-thing")
    request_id = response["X-Request-ID"]
    assert len(request_id) == 32
    lines = json_logs()
    access = next(line for line in lines if line["logger"] == "core.access")
    assert access["request_id"] == request_id
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/v1/no-such-thing", 404)
    assert access["message"].startswith("GET /api/v1/no-such-thing 404 ")
    assert access["level"] == "INFO" and access["time"].endswith("+00:00")
    # Django logs "Not Found" after the middlewares returned: it still carries the request's id.
    not_found = next(line for line in lines if line["logger"] == "django.request")
    assert not_found["message"] == "Not Found: /api/v1/no-such-thing"
    assert not_found["request_id"] == request_id


@pytest.mark.django_db
def test_two_requests_have_two_ids(json_logs):
    client = Client()
    first, second = client.get("/livez")["X-Request-ID"], client.get("/livez")["X-Request-ID"]
    assert first != second
    assert [line["request_id"] for line in json_logs() if line["logger"] == "core.access"] == [first, second]


@pytest.mark.django_db
def test_a_sane_incoming_request_id_is_kept_and_logged(json_logs):
    incoming = "0b7c5e1a-95f2-4a4e-9a43-d3a4c2c5e2f1"
    response = Client().get("/livez", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming
    assert [line["request_id"] for line in json_logs() if line["logger"] == "core.access"] == [incoming]


@pytest.mark.parametrize(
    "incoming",
    ["short", "x" * 129, "has spaces in it", 'quote"injection', "line\nbreak-injected-id", "中文请求编号请求编号"],
)
@pytest.mark.django_db
def test_an_insane_incoming_request_id_is_replaced(incoming):
    response = Client().get("/livez", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming and len(response["X-Request-ID"]) == 32


def test_a_logged_exception_and_extra_fields_are_json_fields():
    formatter, stream = JsonFormatter(), io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tests.ops.json")
    logger.addHandler(handler)
    logger.propagate = False
    token = request_id_var.set("req-id-for-the-test")
    try:
        try:
            raise ValueError("broken 坏了")
        except ValueError:
            logger.exception("card %s failed", "K7QX-3MPA", extra={"card": "K7QX-3MPA", "amount": 100})
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)
        logger.propagate = True
    line = json.loads(stream.getvalue())
    assert line["message"] == "card K7QX-3MPA failed" and line["level"] == "ERROR"
    assert (line["card"], line["amount"], line["request_id"]) == ("K7QX-3MPA", 100, "req-id-for-the-test")
    assert "ValueError: broken 坏了" in line["exception"]


def _settings_in_subprocess(env: dict[str, str]) -> str:
    base = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "DJANGO_DEBUG")}
    done = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.LOG_FORMAT)"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_SECRET_KEY": "k" * 50, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_production_logs_json_and_development_text_unless_log_format_says():
    assert _settings_in_subprocess({"DJANGO_DEBUG": "0"}) == "json"
    assert _settings_in_subprocess({"DJANGO_DEBUG": "1"}) == "text"
    assert _settings_in_subprocess({"DJANGO_DEBUG": "0", "LOG_FORMAT": "text"}) == "text"


# --- Celery ----------------------------------------------------------------------------------------


def test_a_task_enqueued_by_a_request_runs_in_the_worker_with_that_requests_id():
    """A real worker (a thread, on an in-memory broker) runs tasks published by a request through
    the middleware and one published outside any request."""
    from celery import Celery, current_app
    from celery.contrib.testing.worker import start_worker

    # Celery makes the newest app, and the one a test worker starts, the current and default one,
    # which every ``shared_task`` of the project then sends to: put the project's back afterwards.
    project_app = current_app._get_current_object()
    app = Celery("request-id-test", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.task_always_eager = False
    seen: list[str | None] = []

    @app.task(name="tests.ops.request_id_probe")
    def probe():
        seen.append(request_id_get())

    def view(request):
        probe.delay().get(timeout=20)
        return HttpResponse("ok")

    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            response = RequestIdMiddleware(view)(RequestFactory().get("/somewhere"))
            request_id_var.set(None)  # outside any request now: beat's tasks carry none
            probe.delay().get(timeout=20)
    finally:
        project_app.set_current()
        project_app.set_default()
    assert seen == [response["X-Request-ID"], None]
