"""The public record's rate limit: ``PUBLIC_RATE_LIMIT`` requests per client address per minute.

A fixed window counted in Django's cache: the key names the address (``core.web.client_ip``, as
the login throttle counts it) and the minute; the first request of a minute adds the counter, each
request increments it atomically (``cache.incr``, which Redis and the local-memory cache both do
atomically), and one over the limit is answered 429 ``rate_limited`` with ``Retry-After``: the
seconds left in the minute. A window, not a sliding log: at most twice the limit can pass around a
minute's turn, which is enough to keep scrapers off and costs one cache round trip.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from core.web import client_ip
from regulator.errors import RateLimited

WINDOW_SECONDS = 60


def public_rate_limit_wait(request) -> int | None:
    """Count this request against its address; the seconds to wait when it is over the limit, else None."""
    now = time.time()
    window = int(now // WINDOW_SECONDS)
    key = f"public-rate:{client_ip(request) or 'unknown'}:{window}"
    cache.add(key, 0, timeout=WINDOW_SECONDS + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this request starts the count again
        cache.set(key, 1, timeout=WINDOW_SECONDS + 5)
        count = 1
    if count <= settings.PUBLIC_RATE_LIMIT:
        return None
    return max(1, math.ceil((window + 1) * WINDOW_SECONDS - now))


def rate_limited_response(request, wait: int) -> HttpResponse:
    """429 ``rate_limited``: the API's error body for an API path, a short page for a page."""
    error = RateLimited()
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"code": error.code, "detail": str(error.detail)}, status=429)
    else:
        response = render(request, "regulator/public_rate_limited.html", {"wait": wait}, status=429)
    response["Retry-After"] = str(wait)
    response["Cache-Control"] = "no-store"
    return response


def public_rate_limited(view: Callable) -> Callable:
    """Refuse the view's requests beyond ``PUBLIC_RATE_LIMIT`` a minute from one client address."""

    @wraps(view)
    def wrapper(request, *args: Any, **kwargs: Any):
        wait = public_rate_limit_wait(request)
        if wait is not None:
            return rate_limited_response(request, wait)
        return view(request, *args, **kwargs)

    return wrapper
