"""The ``Idempotency-Key`` mechanism of API.md, kept in the database.

A POST carrying the header is fingerprinted (method, path, canonical JSON body). The first request
with a key reserves ``(caller, key)`` under a unique constraint, runs, and stores its response; a
repeat with the same fingerprint within 24 hours replays that response (same status, same body)
without running again; a repeat with another fingerprint is 409 ``idempotency_key_reused``.

A reservation whose request died before storing a response is taken over after
``LOCK_TIMEOUT``; that is safe because services derive their own ledger idempotency keys from the
request key (``service_key``), so a step that did commit is not repeated. For the same reason a key
reused after the 24-hour replay window runs the view again but cannot move the same money twice.

**One transaction per request.** A view declared ``@idempotent(atomic=True)`` runs with a fresh
key inside one transaction that holds the reservation, the service's own writes and the stored
response: they commit together or not at all, in one commit instead of three (the reservation and
the response in autocommit around the service's transaction). The service joins it through
``service_atomic()``, which is its own durable transaction everywhere else. A second request with
the same key waits on the first one's reservation (the unique index) and then replays its
response instead of being told it is in flight. A refusal (a domain error, a 4xx) rolls the
whole request back and is stored afterwards on its own, to be replayed like any response.
Anything unexpected also rolls it back, and the request then runs the classic way, reservation
first: the rare paths (a key seen before, a service that meets a duplicate row) keep the
behaviour above, and nothing of the rolled-back attempt remains.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, connection, transaction
from django.http import Http404
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core import clock, sql
from core.errors import DomainError, IdempotencyKeyReused, IdempotentRequestInProgress, InvalidIdempotencyKey
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"

# Whether an ``@idempotent(atomic=True)`` request's transaction is open (``service_atomic`` joins
# it): request state, in a context variable rather than on the connection object.
_request_open: ContextVar[bool] = ContextVar("idempotent_request_open", default=False)
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


def keyed_id(namespace: uuid.UUID, key: str | None) -> uuid.UUID:
    """The id of the row a keyed service creates: the same key always gives the same id, so a
    repeat meets the row the first one made (its primary key) instead of making a second; without
    a key, a fresh id."""
    return uuid.uuid5(namespace, key) if key else uuid.uuid4()


def idempotency_purge(*, older_than: timedelta | None = None) -> int:
    """Delete stored responses past the replay window (a daily beat job)."""
    window = older_than or timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=clock.now() - window).delete()
    return deleted


def _reserve(*, caller: str, key: str, fingerprint: str, now) -> bool:
    """Insert the reservation unless ``(caller, key)`` exists: one statement, in autocommit."""
    return sql.insert_new(_record(caller=caller, key=key, fingerprint=fingerprint, now=now))


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
    _store(caller=record.caller, key=record.key, status_code=status_code, body=body)


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget a reservation whose request failed with a server error, so a retry can run."""
    IdempotencyRecord.objects.filter(
        caller=record.caller, key=record.key, state=IdempotencyRecord.State.STARTED
    ).delete()


def service_atomic() -> transaction.Atomic:
    """A money-moving service's transaction: its own durable one, or, inside an idempotent
    request's transaction (``@idempotent(atomic=True)``), that one, joined without a savepoint.
    Either way the service's writes commit together with nothing but the request's own record."""
    if _request_open.get() and connection.in_atomic_block:
        return transaction.atomic(savepoint=False)
    return transaction.atomic(durable=True)


class _Unexpected(Exception):
    """Raised out of the request's transaction to roll it back; the request then runs the classic way."""


# What a view raises when it refuses a request: the exception handler answers these with a 4xx.
_REFUSALS = (DomainError, APIException, ObjectDoesNotExist, Http404, DjangoPermissionDenied, DjangoValidationError)


def _in_one_transaction(view_method, view, request, args, kwargs, *, caller: str, key: str, fingerprint: str):
    """Run the view with a fresh key inside one transaction with its record (see the module's
    docstring). None when the key was seen before or the attempt met something unexpected: the
    caller then runs the classic way."""
    now = clock.now()
    refusal = None
    try:
        with transaction.atomic(), sql.writes_ahead():
            # A plain INSERT: a key seen before (or held by a concurrent request, once that one
            # commits) fails it, which rolls this attempt back to the classic way, which replays.
            # It waits for the view's first statement and shares its round trip (sql.writes_ahead).
            sql.execute_all([sql.insert_statement(_record(caller=caller, key=key, fingerprint=fingerprint, now=now))])
            request.idempotency_key = service_key(caller=caller, key=key)
            opened = _request_open.set(True)
            try:
                response = view_method(view, request, *args, **kwargs)
            except _REFUSALS as exc:
                refusal = exc
            except Exception as exc:
                raise _Unexpected() from exc
            finally:
                _request_open.reset(opened)
            if refusal is None and response.status_code < 400:
                _store(caller=caller, key=key, status_code=response.status_code, body=response.data)
                return response
            transaction.set_rollback(True)
    except (_Unexpected, DatabaseError):
        # Rolled back. A DatabaseError here is a write that waited in front of the last
        # statements, or the commit's (a deferred constraint, or the connection lost, when the
        # classic way finds out whether it committed).
        return None
    response = view.handle_exception(refusal) if refusal is not None else response
    if response.status_code < 500:
        _record_refusal(caller=caller, key=key, fingerprint=fingerprint, now=now, response=response)
    return response


def _record(*, caller: str, key: str, fingerprint: str, now) -> IdempotencyRecord:
    """A new reservation of ``(caller, key)``."""
    state = IdempotencyRecord.State.STARTED
    return IdempotencyRecord(
        caller=caller, key=key, fingerprint=fingerprint, state=state, created_at=now, locked_at=now
    )


def _store(*, caller: str, key: str, status_code: int, body: Any) -> None:
    """Store the response (inside ``sql.writes_ahead()`` it goes with the request's last writes).
    The body is stored as the JSON text of DRF's encoder."""
    values = {
        "state": IdempotencyRecord.State.COMPLETED.value,
        "status_code": status_code,
        "response_body": sql.Prepared(json.dumps(body, cls=JSONEncoder)),
    }
    sql.execute_all([sql.update_where_statement(IdempotencyRecord, values, {"caller": caller, "key": key})])


def _record_refusal(*, caller: str, key: str, fingerprint: str, now, response: Response) -> None:
    """Keep a refusal to replay, after its transaction rolled back. A request with the same key
    that got in first keeps its own record."""
    if _reserve(caller=caller, key=key, fingerprint=fingerprint, now=now):
        _store(caller=caller, key=key, status_code=response.status_code, body=response.data)


def idempotent(view_method: Callable[..., Response] | None = None, *, atomic: bool | Callable[[], bool] = False):
    """Decorate a DRF view's ``post``: honour the ``Idempotency-Key`` header.

    The view receives the key as ``request.idempotency_key`` (None without the header) to hand
    to its service. With ``atomic=True`` the request, its service and its stored response are one
    transaction (the service must open its transaction with ``service_atomic()`` and move no
    money outside it). ``atomic`` may be a function, asked on each request: a view whose service
    calls the outside world under some configurations (the Stripe gateway) runs the classic way
    under those, so that no transaction stays open across the call.
    """
    if view_method is None:
        return lambda method: idempotent(method, atomic=atomic)

    @wraps(view_method)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        request.idempotency_key = None
        if key is None:
            return view_method(view, request, *args, **kwargs)
        key = idempotency_key_validate(key)
        fingerprint = request_fingerprint(method=request.method, path=request.path, data=request.data)
        caller = caller_of(request.user)
        if atomic() if callable(atomic) else atomic:
            response = _in_one_transaction(
                view_method, view, request, args, kwargs, caller=caller, key=key, fingerprint=fingerprint
            )
            if response is not None:
                return response
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
