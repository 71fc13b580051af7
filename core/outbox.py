"""The transactional outbox: calls to the outside world that must happen exactly once.

A service that needs the gateway (a refund, a payout) writes an ``OutboxMessage`` in the same
transaction as its ledger entry. After commit a task delivers it: the message's handler calls the
gateway with the message's idempotency key and records the outcome, all in one transaction that
holds the message row locked. A crash before commit leaves the message pending and the next
attempt repeats the call under the same key, which the gateway answers with the first result; so
the money moves once, whatever crashes. Failed attempts are retried with exponential backoff
(``OUTBOX_RETRY_SECONDS``, doubling) up to ``OUTBOX_MAX_ATTEMPTS``, then left ``dead`` for an
operator, and the topic's ``on_dead`` hook records the failure on the business object; its
``on_failure`` hook, if any, sees every failed attempt (retried or not) in the same transaction.
``outbox_resend`` sends a dead message again under its own key, inside the caller's transaction.

``outbox_deliver_batch`` delivers many messages of one topic the same way in one transaction, for
handlers whose outside world is a row in the same database (the local gateway): the messages are
locked, handled and marked sent together, so a crash leaves all of them pending. If the batch
handler raises ``DeliveryFailed``, nothing of the batch is kept and each message goes through
``outbox_deliver`` on its own, which records its retry or failure.

Apps register their topics in ``AppConfig.ready`` with ``outbox_register``. A topic that can be
delivered in batches also registers ``deliver_many``, its ``batch_size`` and ``batch_if``, which
says whether batching is allowed now (the gateway's calls are rows of this database, not calls to
the outside world that a transaction must not stay open across). ``outbox_deliver_many`` (the task
behind ``outbox_enqueue_many``, and the sweep) then delivers that topic's messages in batches, and
every other message on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from core import clock, sql
from core.models import OutboxMessage
from core.sql import rows_insert

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """Raised by a handler when the outside world refused; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def _never() -> bool:
    return False


@dataclass(frozen=True)
class Topic:
    deliver: Callable[[OutboxMessage], None]
    on_dead: Callable[[OutboxMessage], None] | None = None
    on_failure: Callable[[OutboxMessage], None] | None = None
    deliver_many: Callable[[list[OutboxMessage]], None] | None = None
    batch_size: int = 100
    batch_if: Callable[[], bool] = _never

    @property
    def batched(self) -> bool:
        """Whether this topic's messages are delivered ``batch_size`` per transaction now."""
        return self.deliver_many is not None and self.batch_if()


TOPICS: dict[str, Topic] = {}


def outbox_register(
    topic: str,
    *,
    deliver: Callable[[OutboxMessage], None],
    on_dead=None,
    on_failure: Callable[[OutboxMessage], None] | None = None,
    deliver_many: Callable[[list[OutboxMessage]], None] | None = None,
    batch_size: int = 100,
    batch_if: Callable[[], bool] = _never,
) -> None:
    TOPICS[topic] = Topic(
        deliver=deliver,
        on_dead=on_dead,
        on_failure=on_failure,
        deliver_many=deliver_many,
        batch_size=batch_size,
        batch_if=batch_if,
    )


def outbox_enqueue(*, topic: str, payload: dict[str, Any], idempotency_key: str) -> OutboxMessage:
    """Write a message in the caller's transaction; it is sent once that transaction commits."""
    if topic not in TOPICS:
        raise ValueError(f"no outbox handler for topic {topic!r}")
    now = clock.now()
    message = OutboxMessage(
        topic=topic, payload=payload, idempotency_key=idempotency_key, next_attempt_at=now, created_at=now
    )
    sql.insert(message)  # what create() writes, without compiling it on every notice and refund
    transaction.on_commit(lambda: outbox_kick(message_id=message.pk))
    return message


def outbox_enqueue_many(*, topic: str, items: list[tuple[dict[str, Any], str]]) -> list[int]:
    """Write many messages at once (``(payload, idempotency_key)`` pairs) in the caller's
    transaction; a key already written is skipped. Returns the ids of all of them, new or not.
    After commit one task delivers the whole batch."""
    if topic not in TOPICS:
        raise ValueError(f"no outbox handler for topic {topic!r}")
    now = clock.now()
    rows_insert(
        model=OutboxMessage,
        fields=["payload", "idempotency_key"],
        rows=items,
        constants={"topic": topic, "next_attempt_at": now, "created_at": now},
        ignore_conflicts=True,
    )
    ids = list(OutboxMessage.objects.filter(idempotency_key__in=[key for _, key in items]).values_list("pk", flat=True))
    transaction.on_commit(lambda: outbox_kick_many(message_ids=ids))
    return ids


def outbox_kick_many(*, message_ids: list[int]) -> None:
    from core.tasks import outbox_deliver_many_task

    try:
        outbox_deliver_many_task.delay(message_ids)
    except Exception:  # noqa: BLE001 (the messages are safe in the database; the sweep will find them)
        log.warning("broker unavailable: %s outbox messages wait for the sweep", len(message_ids))


def outbox_kick(*, message_id: int, countdown: float = 0) -> None:
    """Queue delivery; if the broker is down the periodic sweep delivers it later."""
    from core.tasks import outbox_deliver_task

    try:
        outbox_deliver_task.apply_async(args=[message_id], countdown=countdown)
    except Exception:  # noqa: BLE001 (the message is safe in the database; the sweep will find it)
        log.warning("broker unavailable: outbox message %s waits for the sweep", message_id)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=settings.OUTBOX_RETRY_SECONDS * 2 ** (attempts - 1))


def outbox_deliver(*, message_id: int) -> str:
    """Deliver one message if it is pending and due. Returns what happened:
    ``sent``, ``retry``, ``dead``, or ``skipped`` (not pending, not due, or being delivered)."""
    with transaction.atomic(durable=True):
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, state=OutboxMessage.State.PENDING, next_attempt_at__lte=clock.now())
            .first()
        )
        if message is None:
            return "skipped"
        topic = TOPICS[message.topic]
        message.attempts += 1
        try:
            with transaction.atomic():
                topic.deliver(message)
        except DeliveryFailed as exc:
            message.last_error = str(exc)[:2000]
            if topic.on_failure:
                topic.on_failure(message)
            if exc.retryable and message.attempts < settings.OUTBOX_MAX_ATTEMPTS:
                message.next_attempt_at = clock.now() + _backoff(message.attempts)
                message.save(update_fields=["attempts", "last_error", "next_attempt_at"])
                delay = _backoff(message.attempts).total_seconds()
                transaction.on_commit(lambda: outbox_kick(message_id=message_id, countdown=delay))
                return "retry"
            message.give_up()
            message.save(update_fields=["attempts", "last_error", "state"])
            if topic.on_dead:
                topic.on_dead(message)
            log.error("outbox message %s (%s) given up: %s", message.pk, message.topic, exc)
            return "dead"
        message.mark_sent()
        message.sent_at = clock.now()
        message.save(update_fields=["attempts", "state", "sent_at"])
        return "sent"


def outbox_deliver_batch(*, message_ids: list[int], deliver_many: Callable[[list[OutboxMessage]], None]) -> int:
    """Deliver the pending, due messages among ``message_ids`` (all of one topic) in one transaction
    with ``deliver_many``, which handles them all or raises. Returns how many were sent.

    Messages being delivered elsewhere are skipped (``skip_locked``), as by ``outbox_deliver``. If
    ``deliver_many`` raises ``DeliveryFailed`` the batch is rolled back and every message is
    delivered on its own, so retries and failures are still recorded per message."""
    try:
        with transaction.atomic(durable=True):
            messages = list(
                OutboxMessage.objects.select_for_update(skip_locked=True)
                .filter(pk__in=message_ids, state=OutboxMessage.State.PENDING, next_attempt_at__lte=clock.now())
                .order_by("pk")
            )
            if not messages:
                return 0
            deliver_many(messages)
            OutboxMessage.objects.filter(pk__in=[message.pk for message in messages]).update(
                state=OutboxMessage.State.SENT, attempts=F("attempts") + 1, sent_at=clock.now()
            )
            return len(messages)
    except DeliveryFailed as exc:
        log.warning("outbox batch of %s messages failed (%s): delivering them one by one", len(message_ids), exc)
    return sum(outbox_deliver(message_id=message_id) == "sent" for message_id in message_ids)


def outbox_deliver_many(*, message_ids: list[int]) -> int:
    """Deliver the messages among ``message_ids`` that are pending and due, and return how many
    were sent: a batched topic's (``Topic.batched``) ``batch_size`` at a time with
    ``outbox_deliver_batch``, every other message on its own with ``outbox_deliver``."""
    topics = dict(OutboxMessage.objects.filter(pk__in=message_ids).values_list("pk", "topic"))
    by_topic: dict[str, list[int]] = {}
    for message_id in message_ids:
        if message_id in topics:
            by_topic.setdefault(topics[message_id], []).append(message_id)
    sent = 0
    for name, ids in by_topic.items():
        topic = TOPICS[name]
        if topic.batched:
            for at in range(0, len(ids), topic.batch_size):
                sent += outbox_deliver_batch(
                    message_ids=ids[at : at + topic.batch_size], deliver_many=topic.deliver_many
                )
        else:
            sent += sum(outbox_deliver(message_id=message_id) == "sent" for message_id in ids)
    return sent


def outbox_due_ids(*, limit: int = 500) -> list[int]:
    return list(
        OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING, next_attempt_at__lte=clock.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_resend(*, topic: str, payload: dict[str, Any], idempotency_key: str) -> OutboxMessage:
    """Send again, in the caller's transaction, the message under ``idempotency_key``: a dead one is
    revived (its attempts start again), a pending one is left to its delivery, and a missing one is
    written anew under the same key, so the outside world still sees one call."""
    message = OutboxMessage.objects.select_for_update().filter(idempotency_key=idempotency_key).first()
    if message is None:
        return outbox_enqueue(topic=topic, payload=payload, idempotency_key=idempotency_key)
    if message.state == OutboxMessage.State.DEAD:
        message.revive()
        message.attempts = 0
        message.next_attempt_at = clock.now()
        message.save(update_fields=["state", "attempts", "next_attempt_at"])
    if message.state == OutboxMessage.State.PENDING:
        message_id = message.pk
        transaction.on_commit(lambda: outbox_kick(message_id=message_id))
    return message


def outbox_revive(*, message_id: int) -> OutboxMessage:
    """An operator sends a dead message again."""
    with transaction.atomic(durable=True):
        message = OutboxMessage.objects.select_for_update().get(pk=message_id)
        message.revive()
        message.attempts = 0
        message.next_attempt_at = clock.now()
        message.save(update_fields=["state", "attempts", "next_attempt_at"])
        transaction.on_commit(lambda: outbox_kick(message_id=message_id))
    return message
