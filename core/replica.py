"""Reads that only read, served by a streaming replica of PostgreSQL (``DATABASE_REPLICA_URL``).

What is sent there: the GET and HEAD requests under ``REPLICA_READ_PATHS`` (the regulator's pages
and API, its exports and reports, the public record), and work a job runs inside ``replica_reads()``.
Everything else stays on the primary: every write, every request that is not a GET or HEAD, the
session and the signed-in user (read by middleware before the view), tokens, idempotency records
(``PRIMARY_ONLY_APPS``), and the reads of whoever has just written. A browser that sent a write gets a
cookie that keeps its reads on the primary for ``REPLICA_PIN_SECONDS`` (its own writes are there
before the replica has replayed them); API clients carry no cookie and read what the replica has.

How far behind the replica may be is PostgreSQL's affair: with ``synchronous_commit = remote_apply``
for the standby a commit returns only once the replica shows it; with asynchronous replication, a
few milliseconds under load. Without ``DATABASE_REPLICA_URL`` nothing changes: one database.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS

REPLICA = "replica"
PIN_COOKIE = "primary_reads_until"
# Apps whose rows a request reads before or for its own writes: always the primary.
PRIMARY_ONLY_APPS = frozenset({"core", "authtoken", "sessions", "auth", "contenttypes", "otp_totp", "axes"})

_on_replica: ContextVar[bool] = ContextVar("reads_on_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def replica_reads() -> Iterator[None]:
    """Within the block, the ORM's reads go to the replica (when there is one)."""
    token = _on_replica.set(True)
    try:
        yield
    finally:
        _on_replica.reset(token)


class ReplicaRouter:
    """``DATABASE_ROUTERS``: reads inside ``replica_reads()`` to the replica, all else to the primary."""

    def db_for_read(self, model, **hints) -> str | None:
        if _on_replica.get() and replica_configured() and model._meta.app_label not in PRIMARY_ONLY_APPS:
            return REPLICA
        return None

    def db_for_write(self, model, **hints) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # the replica holds the primary's rows: an instance read there is one of them

    def allow_migrate(self, db, app_label, **hints) -> bool:
        return db == DEFAULT_DB_ALIAS


def _streamed_on_replica(content: Iterable[bytes]) -> Iterator[bytes]:
    """A streamed response's body, read from the replica chunk by chunk (after the view returned)."""
    iterator = iter(content)
    while True:
        with replica_reads():
            chunk = next(iterator, None)
        if chunk is None:
            return
        yield chunk


class ReplicaReadsMiddleware:
    """Serve the read-only requests under ``REPLICA_READ_PATHS`` from the replica (module docstring);
    after a write, pin the browser's reads to the primary for ``REPLICA_PIN_SECONDS``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_configured():
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response = self.get_response(request)
            pin = settings.REPLICA_PIN_SECONDS
            if pin > 0 and response.status_code < 400:
                response.set_cookie(PIN_COOKIE, str(int(time.time()) + pin), max_age=pin, httponly=True, samesite="Lax")
            return response
        if not self._replica_may_serve(request):
            return self.get_response(request)
        with replica_reads():
            response = self.get_response(request)
        if response.streaming:
            response.streaming_content = _streamed_on_replica(response.streaming_content)
        response["X-Read-From"] = "replica"
        return response

    @staticmethod
    def _replica_may_serve(request) -> bool:
        if not request.path.startswith(tuple(settings.REPLICA_READ_PATHS)):
            return False
        try:
            pinned_until = int(request.COOKIES.get(PIN_COOKIE, "0"))
        except ValueError:
            pinned_until = 0
        return pinned_until <= time.time()
