"""Logging: the request id every line carries, JSON lines, and log filters.

Every request has an id (``core.middleware.RequestIdMiddleware``): the one the client or the proxy
in front sent in ``X-Request-ID`` if it looks like an id, else a new one; the response carries it
back. While the request runs it sits in a context variable, so every log line written meanwhile
(``RequestIdFilter``) and every Celery task the request enqueues (``celery_request_id_connect``)
carries it too. ``LOG_FORMAT=json`` (the default with ``DJANGO_DEBUG`` off) writes each record as
one JSON object a line (``JsonFormatter``); ``text`` writes the message alone.

A refused or missing thing is the client's affair: one line, never a traceback
(``ClientErrorWithoutTraceback``).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and - _ . : / + =, 8 to 128 characters: what proxies and tracers send (UUIDs,
# hex, base64). Anything else (too long, spaces, quotes, control characters) is replaced.
_SANE = re.compile(r"[A-Za-z0-9\-_.:/+=]{8,128}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def request_id_new() -> str:
    return uuid.uuid4().hex


def request_id_accept(value: str | None) -> str:
    """The incoming id if it is a sane one, else a new one."""
    if value and _SANE.fullmatch(value):
        return value
    return request_id_new()


def request_id_get() -> str | None:
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """Put the current request's (or task's) id on every record as ``request_id`` ("-": none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get() or "-"
        return True


# The attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, request_id, the
    exception's traceback if any, and the record's ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get() or None,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            body["exception"] = record.exc_text
        if record.stack_info:
            body["stack"] = self.formatStack(record.stack_info)
        return json.dumps(body, ensure_ascii=False)


def logging_config(*, log_format: str, level: str) -> dict:
    """``LOGGING`` for ``log_format`` "json" or "text".

    Application lines go to stderr; the access log (one line a request, ``core.access``, written by
    ``RequestIdMiddleware``) to stdout, as gunicorn's own access log would. A 403 or 404 logs one line
    ("Forbidden: /path", "Not Found: /path"), never a traceback."""
    json_lines = log_format == "json"
    access_format = {"()": "core.logging.JsonFormatter"} if json_lines else {"format": "%(request_id)s %(message)s"}
    console: dict = {"class": "logging.StreamHandler", "filters": ["request_id"]}
    if json_lines:
        console["formatter"] = "json"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "client_errors": {"()": "core.logging.ClientErrorWithoutTraceback"},
            "request_id": {"()": "core.logging.RequestIdFilter"},
        },
        "formatters": {"json": {"()": "core.logging.JsonFormatter"}, "access": access_format},
        "handlers": {
            "console": console,
            "access": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "filters": ["request_id"],
                "formatter": "access",
            },
        },
        "loggers": {
            # Django's own console handler would print each of its lines a second time beside the root's.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            "django.request": {"filters": ["client_errors"]},
            "core.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
        "root": {"handlers": ["console"], "level": level},
    }


class ClientErrorWithoutTraceback(logging.Filter):
    """Drop the traceback from a 4xx that ``django.request`` logs (Django attaches the raised
    ``Http404`` or ``PermissionDenied`` to it), keeping the one line "Not Found: /path"."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True


# --- Celery: a task carries the id of the request that enqueued it ---------------------------

_TASK_HEADER = "request_id"


def _publish(headers: dict | None = None, **kwargs) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None and _TASK_HEADER not in headers:
        headers[_TASK_HEADER] = request_id


def _task_started(task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, _TASK_HEADER, None) or (getattr(request, "headers", None) or {}).get(_TASK_HEADER)
    if request_id:
        request_id_var.set(request_id)
    elif not (request is not None and getattr(request, "is_eager", False)):
        request_id_var.set(None)  # a task of its own (beat's): no id, nor the previous task's


def _task_finished(task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    if not (request is not None and getattr(request, "is_eager", False)):
        request_id_var.set(None)


def _worker_json_logs(logger=None, **kwargs) -> None:
    """The worker's own handlers (Celery sets them up) write JSON lines with the request id too."""
    from django.conf import settings

    if getattr(settings, "LOG_FORMAT", "text") != "json" or logger is None:
        return
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
        handler.addFilter(RequestIdFilter())


def celery_request_id_connect() -> None:
    """Carry the request id from the request that publishes a task to the worker that runs it (a
    message header), and write the worker's logs as ``LOG_FORMAT`` says."""
    from celery import signals

    signals.before_task_publish.connect(_publish, weak=False, dispatch_uid="core.logging.publish")
    signals.task_prerun.connect(_task_started, weak=False, dispatch_uid="core.logging.task_started")
    signals.task_postrun.connect(_task_finished, weak=False, dispatch_uid="core.logging.task_finished")
    signals.after_setup_logger.connect(_worker_json_logs, weak=False, dispatch_uid="core.logging.worker")
    signals.after_setup_task_logger.connect(_worker_json_logs, weak=False, dispatch_uid="core.logging.task")
