"""Middleware of the platform's own."""

from __future__ import annotations

import logging
import time

from django_prometheus.middleware import PrometheusAfterMiddleware as _PrometheusAfter

from core.exceptions import json_not_found
from core.logging import REQUEST_ID_HEADER, request_id_accept, request_id_var

access_log = logging.getLogger("core.access")


class ApiNotFoundMiddleware:
    """An unknown URL under ``/api/`` answers in the API's error shape in debug mode too: Django
    renders its own HTML page for an unrouted path when ``DEBUG`` is on, without ``handler404``."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return json_not_found(request)
        return response


class RequestIdMiddleware:
    """Give each request its id (``core.logging``): the ``X-Request-ID`` it came with if that is a
    sane id, else a new one. The id is in every log line written while the request runs and in
    every task it enqueues, and goes back in the response's ``X-Request-ID``. Then one access line
    (``core.access``): method, path, status, milliseconds.

    First in ``MIDDLEWARE``, so that every answer carries the id, a redirect to HTTPS included.
    The id stays set until the next request of the thread replaces it: Django logs a 4xx or 5xx
    ("Not Found: /path") after the middlewares have returned."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        request_id = request_id_accept(request.headers.get(REQUEST_ID_HEADER))
        request_id_var.set(request_id)
        request.request_id = request_id
        started = time.monotonic()
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        milliseconds = round((time.monotonic() - started) * 1000, 1)
        access_log.info(  # the path without its query string, which may carry codes and tokens
            "%s %s %s %sms",
            request.method,
            request.path,
            response.status_code,
            milliseconds,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": milliseconds,
            },
        )
        return response


class PrometheusAfterMiddleware(_PrometheusAfter):
    """django-prometheus' counting middleware, with every ``method`` label one of HTTP's methods:
    its latency histogram takes the request's method as sent, so a client sending made-up methods
    would make a new series of each (and the scrape, and Prometheus, grow without end)."""

    def label_metric(self, metric, request, response=None, **labels):
        if "method" in labels:
            labels["method"] = self._method(request)
        return super().label_metric(metric, request, response, **labels)
