"""The ``Idempotency-Key`` mechanism of API.md, kept in the database.

A POST carrying the header is fingerprinted (method, path, canonical JSON body). The first request
with a key reserves ``(caller, key)`` under a unique constraint, runs, and stores its response; a
repeat with the same fingerprint within 24 hours replays that response (same status, same body)
without running again; a repeat with another fingerprint is 409 ``idempotency_key_reused``.

**One path per request: the view runs at most once.** Nothing that happens after a view has
started runs it again.

- *A view declared* ``@idempotent(atomic=True)``: the request's reservation, the view's service
  writes and its stored response are one transaction, committed together or not at all (the service
  joins it through ``service_atomic()``, which is its own durable transaction everywhere else; the
  stored response goes in one round trip with the service's last writes, ``core.sql.writes_ahead``).
  The reservation is a plain INSERT that travels in front of the view's first statement, in its
  round trip (``core.sql.claim_ahead``; on SQLite it is sent before the view). A fresh key costs no
  round trip of its own.
- *A key seen before*: the reservation meets its record (inside a transaction it first waits for a
  request still holding that record uncommitted, so a same-key request waits and then replays
  instead of being told it is in flight). The round trip fails before the view's statement runs:
  the view is stopped there (``core.sql.ClaimRefused``, a ``BaseException`` no view can take for
  its own error), before its first statement has run, and the transaction is rolled back. A new
  transaction locks the key's record, which decides before the view is called. A stored response
  with the same fingerprint is replayed, another fingerprint is 409 ``idempotency_key_reused``, a
  reservation younger than ``LOCK_TIMEOUT`` whose response is not stored yet is 409
  ``idempotency_request_in_progress``. A reservation whose request died before storing a response
  (older than ``LOCK_TIMEOUT``), or a record past the 24-hour replay window, is taken over:
  reserved anew in that transaction, and the view runs in it. That is safe because services derive
  their own ledger idempotency keys from the request key (``service_key``) and the ids of the rows
  they create from it (``keyed_id``), and look for what an earlier run made before writing. The
  reservation has no savepoint of its own: a key seen before is rare, and a savepoint in every
  request's transaction cost PostgreSQL a subtransaction each time.
- *A view without* ``atomic`` (the classic way): the reservation commits on its own first (or the
  key's record decides, as above), the view's service commits its own transaction, and the
  response is stored after it.

In the request's transaction a refusal (a domain error, a 4xx) rolls everything back and is then
stored on its own, to be replayed like any response (a view that refused before its first
statement never sent its reservation: the key's record, if it has one, decides then). A failure
once the view has answered (its last writes, or the commit: a deferred constraint, the connection
lost) does not run it again either: the record says whether the transaction committed (the
response is then returned, or the one a same-key request stored after it replayed); otherwise the
error is the answer, a 503 when the database went away, which the client retries with the same key.

A key whose record was purged (``idempotency_purge``, after the replay window) looks fresh. A
service that writes rows keyed by the request key (``keyed_id``) then meets the rows the first
request made, and answers with them: the card purchase catches the ``IntegrityError``. In one
transaction that needs ``@idempotent(keyed=True)``: a savepoint taken after the reservation (in
the same round trip), and the service's writes sent before it returns, so the error reaches the
service with the transaction rolled back to that savepoint (the reservation kept) and usable to
read those rows. It costs a keyed request one round trip (its last writes and its stored response
go in two); a keyed view writes nothing outside its service.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from contextvars import ContextVar
from datetime import datetime, timedelta
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

# How a service joins the open transaction of an ``@idempotent(atomic=True)`` request
# (``service_atomic``): "" plainly, or the name of the request's savepoint (``keyed=True``); None
# outside one. Request state, in a context variable rather than on the connection object.
_request_open: ContextVar[str | None] = ContextVar("idempotent_request_open", default=None)
_SAVEPOINT = "idempotent_request"
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


def service_atomic() -> AbstractContextManager[Any]:
    """A money-moving service's transaction: its own durable one, or, inside an idempotent
    request's transaction (``@idempotent(atomic=True)``), that one, joined without a savepoint
    (``keyed=True``: see ``_keyed_service``). Either way the service's writes commit together with
    nothing but the request's own record."""
    joined = _request_open.get()
    if joined is not None and connection.in_atomic_block:
        return _keyed_service(joined) if joined else transaction.atomic(savepoint=False)
    return transaction.atomic(durable=True)


@contextmanager
def _keyed_service(savepoint: str) -> Iterator[None]:
    """A keyed service's part of its request's transaction. Its writes are sent before it returns
    (in the round trip that releases the request's savepoint), so one that meets a row an earlier
    request made under the same key (a key whose record was purged) raises ``IntegrityError`` in
    the service, with the transaction rolled back to the savepoint, the reservation kept: the
    service can read that row and answer with it. The savepoint serves once: a service called
    within or after this one joins plainly."""
    _request_open.set("")  # undone with the rest of the request's state when its view returns
    try:
        yield
        sql.savepoint("release", savepoint)  # after the waiting writes
    except DatabaseError:
        with suppress(DatabaseError):  # a lost connection: the error says it
            sql.savepoint("rollback", savepoint)
        raise


# What a view raises when it refuses a request: the exception handler answers these with a 4xx.
_REFUSALS = (DomainError, APIException, ObjectDoesNotExist, Http404, DjangoPermissionDenied, DjangoValidationError)


class _Decided(Exception):
    """Raised in the request's transaction when its key's record decides the request (a replay,
    or a 409), before the view is called: it rolls the transaction back."""

    def __init__(self, *, response: Response | None = None, exception: Exception | None = None) -> None:
        super().__init__()
        self.response = response
        self.exception = exception


class _Refused(Exception):
    """Raised out of the request's transaction to roll it back: the view refused the request."""

    def __init__(self, *, exception: Exception | None = None, response: Response | None = None) -> None:
        super().__init__()
        self.exception = exception
        self.response = response


def _record(*, caller: str, key: str, fingerprint: str, now: datetime) -> IdempotencyRecord:
    """A new reservation of ``(caller, key)``."""
    state = IdempotencyRecord.State.STARTED
    return IdempotencyRecord(
        caller=caller, key=key, fingerprint=fingerprint, state=state, created_at=now, locked_at=now
    )


def _reserve(*, caller: str, key: str, fingerprint: str, now: datetime) -> bool:
    """Insert the reservation unless ``(caller, key)`` has a record: one statement (in a
    transaction, it waits for one holding an uncommitted record of the key to end)."""
    return sql.insert_new(_record(caller=caller, key=key, fingerprint=fingerprint, now=now))


def _seen_before(*, caller: str, key: str, fingerprint: str, now: datetime) -> tuple[IdempotencyRecord, bool] | None:
    """The record of a key seen before, locked (in the caller's transaction), and whether its
    response is to be replayed; otherwise this request has taken it over (reserved it anew).
    None if it is gone since (purged): the key is fresh again. Raises the API's 409s."""
    record = IdempotencyRecord.objects.select_for_update().filter(caller=caller, key=key).first()
    if record is None:
        return None
    if record.created_at < now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS):
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


def _key_taken(error: BaseException) -> bool:
    """Whether ``error`` is a reservation meeting the key's record (the only unique values of the
    table are ``(caller, key)`` and the id)."""
    return sql.unique_violated(error, IdempotencyRecord)


def _settle(*, caller: str, key: str, fingerprint: str, now: datetime, keyed: bool) -> bool:
    """At the start of a transaction, for a request whose reservation met the key's record: the
    record, locked, decides. A replay or a 409 is raised (``_Decided``); a key taken over goes on in
    this transaction (False); True: the record went away meanwhile, reserve the key again."""
    try:
        seen = _seen_before(caller=caller, key=key, fingerprint=fingerprint, now=now)
    except DomainError as exc:
        raise _Decided(exception=exc) from exc
    if seen is None:
        return True
    record, replay = seen
    if replay:
        raise _Decided(response=_replayed(record))
    if keyed:
        sql.execute_all([sql.savepoint_statement("create", _SAVEPOINT)])
    return False


def _claim(*, caller: str, key: str, fingerprint: str, now: datetime) -> tuple[IdempotencyRecord, bool] | None:
    """Reserve the key for this request (None), or the record of a key seen before and whether
    to replay it (see ``_seen_before``): what the request does, known before the view runs."""
    while not _reserve(caller=caller, key=key, fingerprint=fingerprint, now=now):
        seen = _seen_before(caller=caller, key=key, fingerprint=fingerprint, now=now)
        if seen is not None:
            return seen
    return None


def _store(*, caller: str, key: str, status_code: int, body: Any) -> None:
    """Store the response (inside ``sql.writes_ahead()`` it goes with the request's last writes).
    The body is stored as the JSON text of DRF's encoder."""
    values = {
        "state": IdempotencyRecord.State.COMPLETED.value,
        "status_code": status_code,
        "response_body": sql.Prepared(json.dumps(body, cls=JSONEncoder)),
    }
    sql.execute_all([sql.update_where_statement(IdempotencyRecord, values, {"caller": caller, "key": key})])


def _release(*, caller: str, key: str) -> None:
    """Forget a reservation whose request failed with a server error, so a retry can run."""
    IdempotencyRecord.objects.filter(caller=caller, key=key, state=IdempotencyRecord.State.STARTED).delete()


def _replayed(record: IdempotencyRecord) -> Response:
    response = Response(record.response_body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def _run_reserved(view_method, view, request, args, kwargs, *, caller: str, key: str) -> Response:
    """The classic way, the key reserved and committed: run the view (its service commits its own
    transaction), then store its response, or forget the reservation after a server error."""
    try:
        response = view_method(view, request, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 (turned into the response DRF would give)
        try:
            response = view.handle_exception(exc)
        except Exception:
            _release(caller=caller, key=key)
            raise
    if response.status_code >= 500:
        _release(caller=caller, key=key)
    else:
        _store(caller=caller, key=key, status_code=response.status_code, body=response.data)
    return response


def _reserved_first(view_method, view, request, args, kwargs, *, caller: str, key: str, fingerprint: str) -> Response:
    """A view without ``atomic``: the reservation in autocommit (or the key's record, locked
    while it is read), then the view the classic way."""
    now = clock.now()
    while not _reserve(caller=caller, key=key, fingerprint=fingerprint, now=now):
        with transaction.atomic():
            seen = _seen_before(caller=caller, key=key, fingerprint=fingerprint, now=now)
        if seen is not None:
            record, replay = seen
            if replay:
                return _replayed(record)
            break
    return _run_reserved(view_method, view, request, args, kwargs, caller=caller, key=key)


def _in_one_transaction(
    view_method,
    view,
    request,
    args,
    kwargs,
    *,
    caller: str,
    key: str,
    fingerprint: str,
    keyed: bool,
    seen: bool = False,
) -> Response:
    """The request's reservation, its view's service writes and its stored response in one
    transaction; the reservation goes in front of the view's first statement. A key seen before
    (``seen``: its reservation was refused) is decided by its record first (the module's docstring)."""
    now = clock.now()
    claim = [sql.insert_statement(_record(caller=caller, key=key, fingerprint=fingerprint, now=now))]
    if keyed:
        claim.append(sql.savepoint_statement("create", _SAVEPOINT))
    answer: Response | None = None
    try:
        with transaction.atomic(), sql.writes_ahead():
            if not seen or _settle(caller=caller, key=key, fingerprint=fingerprint, now=now, keyed=keyed):
                sql.claim_ahead(claim, refused=_key_taken)
            opened = _request_open.set(_SAVEPOINT if keyed else "")
            try:
                response = view_method(view, request, *args, **kwargs)
            except _REFUSALS as exc:
                raise _Refused(exception=exc) from exc
            finally:
                _request_open.reset(opened)
            if response.status_code >= 400:
                raise _Refused(response=response)
            _store(caller=caller, key=key, status_code=response.status_code, body=response.data)
            answer = response
    except sql.ClaimRefused:  # rolled back at the view's first statement, which never ran
        return _in_one_transaction(
            view_method,
            view,
            request,
            args,
            kwargs,
            caller=caller,
            key=key,
            fingerprint=fingerprint,
            keyed=keyed,
            seen=True,
        )
    except _Decided as decided:  # rolled back: the key's record decided, the view was not called
        if decided.exception is not None:
            raise decided.exception from None
        return decided.response
    except _Refused as refused:  # rolled back, its writes unsent
        response = view.handle_exception(refused.exception) if refused.response is None else refused.response
        if response.status_code >= 500:
            return response
        return _store_refusal(caller=caller, key=key, fingerprint=fingerprint, now=now, response=response)
    except DatabaseError as exc:
        if answer is None:
            raise
        return _after_failed_commit(exc, answer, caller=caller, key=key, fingerprint=fingerprint, now=now)
    return answer


def _store_refusal(*, caller: str, key: str, fingerprint: str, now: datetime, response: Response) -> Response:
    """Keep a refusal to replay, after its transaction rolled back, and answer with it. A view that
    refused before its first statement never sent its reservation: the key's record, if it has
    one, decides now (a replay, or a 409); a request with the same key that got in meanwhile keeps
    its own record and is replayed."""
    with transaction.atomic():
        seen = _claim(caller=caller, key=key, fingerprint=fingerprint, now=now)
        if seen is not None and seen[1]:
            return _replayed(seen[0])
        _store(caller=caller, key=key, status_code=response.status_code, body=response.data)
    return response


def _after_failed_commit(
    error: DatabaseError, answer: Response, *, caller: str, key: str, fingerprint: str, now: datetime
) -> Response:
    """The view answered, then its last writes or the commit failed: the record says whether the
    transaction committed after all (a connection lost at the commit). If it did, the answer
    stands; if a same-key request ran and stored its response since, that is replayed; else the
    error is the answer (a 503 when the database went away)."""
    try:
        record = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
    except DatabaseError:
        raise error from None
    if record is None or record.state != IdempotencyRecord.State.COMPLETED or record.fingerprint != fingerprint:
        raise error
    return answer if record.created_at == now else _replayed(record)


def idempotent(
    view_method: Callable[..., Response] | None = None,
    *,
    atomic: bool | Callable[[], bool] = False,
    keyed: bool = False,
):
    """Decorate a DRF view's ``post``: honour the ``Idempotency-Key`` header.

    The view receives the key as ``request.idempotency_key`` (None without the header) to hand
    to its service. With ``atomic=True`` the request, its service and its stored response are one
    transaction (the service must open its transaction with ``service_atomic()`` and move no
    money outside it). ``atomic`` may be a function, asked on each request: a view whose service
    calls the outside world under some configurations (the Stripe gateway) runs the classic way
    under those, so that no transaction stays open across the call. ``keyed=True`` says the
    service writes rows keyed by the request key and recovers when it meets them (a purged key's
    repeat): in the request's transaction it then gets a savepoint and its writes are checked
    before it returns (the module's docstring).
    """
    if view_method is None:
        return lambda method: idempotent(method, atomic=atomic, keyed=keyed)

    @wraps(view_method)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        request.idempotency_key = None
        if key is None:
            return view_method(view, request, *args, **kwargs)
        key = idempotency_key_validate(key)
        fingerprint = request_fingerprint(method=request.method, path=request.path, data=request.data)
        caller = caller_of(request.user)
        request.idempotency_key = service_key(caller=caller, key=key)
        if atomic() if callable(atomic) else atomic:
            return _in_one_transaction(
                view_method, view, request, args, kwargs, caller=caller, key=key, fingerprint=fingerprint, keyed=keyed
            )
        return _reserved_first(
            view_method, view, request, args, kwargs, caller=caller, key=key, fingerprint=fingerprint
        )

    return wrapper
