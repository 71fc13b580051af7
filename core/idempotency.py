"""The ``Idempotency-Key`` mechanism of API.md, kept in the database.

A POST carrying the header is fingerprinted (method, path, canonical JSON body). The first request
with a key reserves ``(caller, key)`` under a unique constraint, runs, and stores its response; a
repeat with the same fingerprint within 24 hours replays that response (same status, same body)
without running again; a repeat with another fingerprint is 409 ``idempotency_key_reused``.

A reservation whose request died before storing a response is taken over after
``LOCK_TIMEOUT``; that is safe because services derive their own ledger idempotency keys from the
request key (``service_key``), so a step that did commit is not repeated. For the same reason a key
reused after the 24-hour replay window runs the view again but cannot move the same money twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core import clock
from core.errors import IdempotencyKeyReused, IdempotentRequestInProgress, InvalidIdempotencyKey
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"
LOCK_TIMEOUT = timedelta(seconds=60)


def idempotency_key_validate(key: str) -> str:
    if not 1 <= len(key) <= 255 or not all(" " <= ch <= "~" for ch in key):
        raise InvalidIdempotencyKey()
    return key


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), cls=JSONEncoder, ensure_ascii=False)
    return hashlib.sha256(f"{method}\n{path}\n{canonical}".encode()).hexdigest()


def caller_of(user: Any) -> str:
    return f"user:{user.pk}" if getattr(user, "is_authenticated", False) else "anonymous"


def service_key(*, caller: str, key: str) -> str:
    """The key a service posts under for this request: fixed-length, and distinct per caller."""
    return "req:" + hashlib.sha256(f"{caller}\n{key}".encode()).hexdigest()


def idempotency_purge(*, older_than: timedelta | None = None) -> int:
    """Delete stored responses past the replay window (a daily beat job)."""
    window = older_than or timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=clock.now() - window).delete()
    return deleted


def _reserve(*, caller: str, key: str, fingerprint: str, now) -> bool:
    """Insert the reservation unless ``(caller, key)`` exists: one statement, in autocommit."""
    table = IdempotencyRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (caller, key, fingerprint, state, created_at, locked_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (caller, key) DO NOTHING RETURNING id",
            [caller, key, fingerprint, IdempotencyRecord.State.STARTED,
             connection.ops.adapt_datetimefield_value(now), connection.ops.adapt_datetimefield_value(now)],
        )  # fmt: skip
        row = cursor.fetchone()
    return row is not None


def idempotency_begin(*, caller: str, key: str, fingerprint: str) -> tuple[IdempotencyRecord, bool]:
    """Reserve ``(caller, key)``. Returns the record and whether it holds a response to replay."""
    now = clock.now()
    if _reserve(caller=caller, key=key, fingerprint=fingerprint, now=now):
        return IdempotencyRecord(caller=caller, key=key, fingerprint=fingerprint, created_at=now, locked_at=now), False
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().get(caller=caller, key=key)
        expired = record.created_at < now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
        if expired:
            record.fingerprint = fingerprint
            record.state = IdempotencyRecord.State.STARTED
            record.status_code = None
            record.response_body = None
            record.created_at = record.locked_at = now
            record.save()
            return record, False
        if record.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        if record.state == IdempotencyRecord.State.COMPLETED:
            return record, True
        if record.locked_at > now - LOCK_TIMEOUT:
            raise IdempotentRequestInProgress()
        record.locked_at = now
        record.save(update_fields=["locked_at"])
        return record, False


def idempotency_complete(*, record: IdempotencyRecord, status_code: int, body: Any) -> None:
    """Store the response: one plain UPDATE in autocommit (every idempotent request runs it, and
    the ORM's compilation of it cost more than the statement). The body is stored as the JSON
    text ``JSONField`` would write."""
    table = IdempotencyRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET state = %s, status_code = %s, response_body = %s WHERE caller = %s AND key = %s",
            [IdempotencyRecord.State.COMPLETED.value, status_code, json.dumps(body, cls=JSONEncoder),
             record.caller, record.key],
        )  # fmt: skip


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget a reservation whose request failed with a server error, so a retry can run."""
    IdempotencyRecord.objects.filter(
        caller=record.caller, key=record.key, state=IdempotencyRecord.State.STARTED
    ).delete()


def idempotent(view_method: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate a DRF view's ``post``: honour the ``Idempotency-Key`` header.

    The view receives the key as ``request.idempotency_key`` (None without the header) to hand
    to its service.
    """

    @wraps(view_method)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        request.idempotency_key = None
        if key is None:
            return view_method(view, request, *args, **kwargs)
        key = idempotency_key_validate(key)
        fingerprint = request_fingerprint(method=request.method, path=request.path, data=request.data)
        caller = caller_of(request.user)
        record, replay = idempotency_begin(caller=caller, key=key, fingerprint=fingerprint)
        if replay:
            response = Response(record.response_body, status=record.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        request.idempotency_key = service_key(caller=caller, key=key)
        try:
            response = view_method(view, request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 (turned into the response DRF would give)
            try:
                response = view.handle_exception(exc)
            except Exception:
                idempotency_release(record=record)
                raise
        if response.status_code >= 500:
            idempotency_release(record=record)
        else:
            idempotency_complete(record=record, status_code=response.status_code, body=response.data)
        return response

    return wrapper
