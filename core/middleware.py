"""Middleware of the platform's own."""

from __future__ import annotations

import logging
import time
from timeit import default_timer

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _
from django_prometheus.middleware import Metrics

from core import clock
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


HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"))


class HttpMetricsMiddleware:
    """Request rates and latencies for Prometheus (README "Operations"), in django-prometheus' own
    series: ``django_http_requests_total_by_view_transport_method``,
    ``django_http_responses_total_by_status``, ``..._by_status_view_method`` and the latency
    histogram ``django_http_requests_latency_seconds_by_view_method``, the ones the alert rules and
    the dashboard read.

    One middleware in place of django-prometheus' two, which count a dozen series a request (body
    sizes, charsets, transports, ...) that nothing reads: they were a tenth of the Python calls of a
    card's flow. The four series' children are looked up once per (view, method, transport, status)
    and kept, instead of ``labels()`` (which validates and locks) four times a request. The keys are
    bounded: views are the URL names, a method not one of HTTP's counts as ``<invalid method>`` (a
    client sending made-up methods would otherwise make a new series of each), statuses are
    Django's.

    Second in ``MIDDLEWARE``, after the request id: the latency is the whole stack's."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.metrics = Metrics.get_instance()
        self.children: dict[tuple[str, str, str, int], tuple] = {}

    def __call__(self, request):
        started = default_timer()
        response = self.get_response(request)
        elapsed = default_timer() - started
        method = request.method if request.method in HTTP_METHODS else "<invalid method>"
        match = getattr(request, "resolver_match", None)
        view = (match.view_name if match is not None else None) or "<unnamed view>"
        transport = "https" if request.is_secure() else "http"
        key = (view, method, transport, response.status_code)
        children = self.children.get(key)
        if children is None:
            children = self.children[key] = self._labelled(view, method, transport, str(response.status_code))
        requests, responses, responses_by_view, latency = children
        requests.inc()
        responses.inc()
        responses_by_view.inc()
        latency.observe(elapsed)
        return response

    def _labelled(self, view: str, method: str, transport: str, status: str) -> tuple:
        metrics = self.metrics
        return (
            metrics.requests_by_view_transport_method.labels(view=view, transport=transport, method=method),
            metrics.responses_by_status.labels(status=status),
            metrics.responses_by_status_view_method.labels(status=status, view=view, method=method),
            metrics.requests_latency_by_view_method.labels(view=view, method=method),
        )


LAST_SEEN_KEY = "last_seen"  # a regulator's session: the time of its last request (POSIX seconds)


class RegulatorSessionMiddleware:
    """A regulator's session holds only after both factors, and not for long idle.

    - A session of a user who needs a second factor (``User.needs_second_factor``) that has not
      passed it (django-otp's ``is_verified()``, set by the login page's code step) is ended before
      the view runs: the request goes on as anonymous, so a page sends it to log in and the API
      answers 401, whatever path logged the user in with a password alone.
    - A regulator's session with no request for ``REGULATOR_SESSION_IDLE_MINUTES`` ends (logged out,
      with the reason in the audit log and on the login page); every request counts as activity.

    Installed after django-otp's ``OTPMiddleware`` and Django's ``MessageMiddleware``.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:  # no session to end (an API token's request)
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.needs_second_factor:
            self._check(request, user)
        return self.get_response(request)

    @staticmethod
    def _check(request, user) -> None:
        if not getattr(user, "is_verified", lambda: False)():
            request.session.flush()
            request.user = AnonymousUser()
            return
        now = clock.now().timestamp()
        last_seen = request.session.get(LAST_SEEN_KEY)
        idle = settings.REGULATOR_SESSION_IDLE_MINUTES
        if isinstance(last_seen, int | float) and now - last_seen > idle * 60:
            request.session_end_reason = "idle"  # for the audit log's receiver of user_logged_out
            logout(request)
            messages.info(
                request,
                _("You were signed out after %(minutes)s minutes without activity. Sign in again.") % {"minutes": idle},
            )
            return
        request.session[LAST_SEEN_KEY] = now
