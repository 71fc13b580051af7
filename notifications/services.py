"""Notifications: one service for every notice to a consumer or a merchant.

Sending one notice (any app, inside its own transaction)::

    from notifications.services import notification_send

    notification_send(
        user_id=consumer.user_id,
        kind="refund_paid",                      # one of notifications.models.Kind
        event_key=f"refund_paid:{refund.pk}",    # the event; (user, event_key) is sent once, ever
        params={"merchant": name, "amount_fen": refund.amount},
        card_id=card.pk, merchant_id=merchant.pk,  # optional, shown with the notice
        about_money=True,
    )

- It returns the new ``Notification``, or ``None`` when that user already has that event (a retry,
  a second worker, a race: the unique ``(user, event_key)`` decides, also between transactions).
- It joins the caller's transaction: the notice and its outbox messages commit or roll back with
  the caller's own writes. Nothing outside is called before commit.
- ``params`` are plain JSON values; ``texts.render`` formats them in the person's language (keys
  ending ``_fen`` in yuan, ``_at`` in Beijing time, ``_on`` as a date). Each kind's params are
  listed in ``texts.py``.

Channels: in the app always. SMS when the person has a phone, e-mail when they have an address,
each through the outbox under the key ``notify:<notification id>:<channel>`` (so at most once per
channel, whatever is retried). A notice ``about_money`` (a service to confirm, a refund, a merchant
in trouble) goes on every channel the person has; the switches ``notify_sms`` and ``notify_email``
silence only the other notices. A provider's refusal is retried with backoff and, when every
attempt failed, recorded on the notification (``undelivered``); it never undoes the event.

Many people at once (every holder of a merchant's cards): ``fanout_start`` records a ``FanOut`` job
over a registered audience (``notifications.audiences``) in the caller's transaction; workers run it
a chunk per transaction (``fanout_step``), the notices of a chunk written with one statement and the
cursor moved in the same transaction, so a killed worker's chunk is simply done again and
``(user, event_key)`` keeps each person at one notice. ``fanouts_resume`` (beat) restarts stale jobs.
"""

from __future__ import annotations

import logging
import re
import smtplib
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from core import clock, sql
from core.errors import InvalidInput, NotFound
from core.faults import fault_point
from core.jobs import jobs_stale
from core.models import OutboxMessage, User
from core.outbox import DeliveryFailed, outbox_enqueue, outbox_enqueue_many
from core.sql import rows_insert
from notifications.audiences import audience_get
from notifications.models import Channel, FanOut, Kind, Notification, NotificationSettings
from notifications.sms import sms_backend
from notifications.texts import render

log = logging.getLogger(__name__)

SMS_TOPIC = "notify.sms"
EMAIL_TOPIC = "notify.email"
FANOUT_CHUNK = 1000
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,18}$")


@dataclass(frozen=True)
class Contact:
    language: str
    phone: str
    email: str
    notify_sms: bool
    notify_email: bool


def _contact_of(email: str | None, phone: str | None, notify_sms, notify_email, language: str | None) -> Contact:
    """A contact from a user's e-mail and its settings' values (None: the user has no settings;
    the defaults stand)."""
    return Contact(
        language=language or settings.LANGUAGE_CODE,
        phone=phone or "",
        email=email or "",
        notify_sms=notify_sms is not False,
        notify_email=notify_email is not False,
    )


def _contacts(user_ids: list[int]) -> dict[int, Contact]:
    """Each user's addresses and switches (defaults for a user without settings), one query."""
    rows = User.objects.filter(pk__in=user_ids).values_list(
        "pk",
        "email",
        "notification_settings__phone",
        "notification_settings__notify_sms",
        "notification_settings__notify_email",
        "notification_settings__language",
    )
    return {
        pk: _contact_of(email, phone, notify_sms, notify_email, language)
        for pk, email, phone, notify_sms, notify_email, language in rows
    }


def _contact(user_id: int) -> Contact | None:
    """One user's addresses and switches (``_contacts`` for one): core.sql's prepared select of
    the user with its settings, read on every notice sent in a request."""
    user = sql.get(User, lookup={"pk": user_id}, related=("notification_settings",))
    if user is None:
        return None
    prefs = getattr(user, "notification_settings", None)
    if prefs is None:
        return _contact_of(user.email, None, None, None, None)
    return _contact_of(user.email, prefs.phone, prefs.notify_sms, prefs.notify_email, prefs.language)


def channels_for(contact: Contact, *, about_money: bool) -> list[str]:
    """The channels a notice goes on (the rule of the module docstring)."""
    channels = [Channel.IN_APP.value]
    if contact.phone and (about_money or contact.notify_sms):
        channels.append(Channel.SMS.value)
    if contact.email and (about_money or contact.notify_email):
        channels.append(Channel.EMAIL.value)
    return channels


def _deliveries(rows: list[tuple[int, Contact, list[str]]]) -> dict[str, list[tuple[dict[str, Any], str]]]:
    """The outbox messages of new notices: ``{topic: [(payload, key), ...]}``."""
    out: dict[str, list[tuple[dict[str, Any], str]]] = {SMS_TOPIC: [], EMAIL_TOPIC: []}
    for pk, contact, channels in rows:
        if Channel.SMS in channels:
            out[SMS_TOPIC].append(({"notification_id": pk, "to": contact.phone}, f"notify:{pk}:sms"))
        if Channel.EMAIL in channels:
            out[EMAIL_TOPIC].append(({"notification_id": pk, "to": contact.email}, f"notify:{pk}:email"))
    return out


def notification_send(
    *,
    user_id: int,
    kind: str,
    event_key: str,
    params: dict[str, Any],
    card_id=None,
    merchant_id=None,
    about_money: bool,
) -> Notification | None:
    """Tell one user about one event, once (see the module docstring). Returns the notice, or None
    if this user was already told of ``event_key``."""
    if kind not in Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    # Inside a caller's transaction, part of it (no savepoint: a failure here is the caller's).
    with transaction.atomic(savepoint=False):
        contact = _contact(user_id)
        if contact is None:
            raise ValueError(f"no user {user_id}")
        title, body = render(kind=kind, params=params, language=contact.language)
        channels = channels_for(contact, about_money=about_money)
        notification = Notification(
            user_id=user_id,
            event_key=event_key,
            kind=kind,
            title=title,
            body=body,
            card_id=card_id,
            merchant_id=merchant_id,
            about_money=about_money,
            channels=channels,
            created_at=clock.now(),
        )
        # One statement: the notice, unless this user was told of this event already (the unique
        # (user, event_key); a concurrent one is waited for, then skipped).
        if not sql.insert_new(notification):
            return None
        for topic, items in _deliveries([(notification.pk, contact, channels)]).items():
            for payload, key in items:
                outbox_enqueue(topic=topic, payload=payload, idempotency_key=key)
    return notification


def notification_mark_read(*, user: User, notification_id) -> Notification:
    """Mark one of the user's notices read (again: unchanged). Another person's is not found."""
    try:
        notification = Notification.objects.get(pk=int(notification_id), user=user)
    except (Notification.DoesNotExist, ValueError, TypeError, OverflowError) as exc:
        raise NotFound() from exc
    if notification.read_at is None:
        notification.read_at = clock.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=notification.read_at)
    return notification


def notifications_mark_all_read(*, user: User) -> int:
    """Mark every unread notice of the user read; returns how many."""
    return Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=clock.now())


# --- contacts and preferences ------------------------------------------------------------------


def _validate_contact(*, email: str | None, phone: str | None) -> None:
    errors: dict[str, list[str]] = {}
    if email:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = [_("Enter a valid e-mail address.")]
    if phone and not PHONE.match(phone):
        errors["phone"] = [_("Enter a valid phone number.")]
    if errors:
        raise InvalidInput(errors=errors)


def notification_settings_set(
    *,
    user: User,
    email: str | None = None,
    phone: str | None = None,
    notify_sms: bool | None = None,
    notify_email: bool | None = None,
    language: str | None = None,
) -> NotificationSettings:
    """Change a user's contact and switches (what is None stays). An empty ``email`` or ``phone``
    removes it. Also what sign-up calls with the address and phone given there."""
    email = email.strip() if email is not None else None
    phone = phone.strip() if phone is not None else None
    _validate_contact(email=email, phone=phone)
    if language is not None and language not in dict(settings.LANGUAGES):
        raise InvalidInput(errors={"language": [_("Unknown language.")]})
    with transaction.atomic():
        prefs, _created = NotificationSettings.objects.select_for_update().get_or_create(user=user)
        fields = []
        for name, value in (("phone", phone), ("notify_sms", notify_sms), ("notify_email", notify_email)):
            if value is not None:
                setattr(prefs, name, value)
                fields.append(name)
        if language is not None:
            prefs.language = language
            fields.append("language")
        if fields:
            prefs.save(update_fields=fields)
        if email is not None and email != user.email:
            user.email = email
            User.objects.filter(pk=user.pk).update(email=email)
    return prefs


# --- delivery (outbox handlers) -----------------------------------------------------------------


def sms_deliver(message: OutboxMessage) -> None:
    notification = Notification.objects.get(pk=message.payload["notification_id"])
    sms_backend().send(
        phone=message.payload["to"],
        kind=notification.kind,
        title=notification.title,
        body=notification.body,
        key=message.idempotency_key,
    )


def sms_deliver_many(messages: list[OutboxMessage]) -> None:
    """The console backend's batch: its "outside world" is the log, so a batch is one transaction."""
    for message in messages:
        sms_deliver(message)


def sms_batchable() -> bool:
    return settings.SMS_BACKEND == "console"


def email_deliver(message: OutboxMessage) -> None:
    notification = Notification.objects.get(pk=message.payload["notification_id"])
    try:
        send_mail(notification.title, notification.body, settings.DEFAULT_FROM_EMAIL, [message.payload["to"]])
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"e-mail: {exc}") from exc


def delivery_dead(message: OutboxMessage) -> None:
    """Every attempt on a channel failed: recorded on the notification (the event stands)."""
    channel = Channel.SMS.value if message.topic == SMS_TOPIC else Channel.EMAIL.value
    notification = Notification.objects.select_for_update().get(pk=message.payload["notification_id"])
    if channel not in notification.undelivered:
        notification.undelivered = [*notification.undelivered, channel]
        notification.save(update_fields=["undelivered"])


# --- fan-out --------------------------------------------------------------------------------------


def fanout_start(
    *,
    kind: str,
    event_key: str,
    params: dict[str, Any],
    audience: str,
    audience_arg: str = "",
    merchant_id=None,
    about_money: bool,
) -> FanOut:
    """Tell everyone in ``audience`` about one event, in the background. Joins the caller's
    transaction; the first chunk is queued once it commits. Starting the same event again returns
    its job."""
    if kind not in Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    render(kind=kind, params=params, language=settings.LANGUAGE_CODE)  # a missing param fails here, not later
    members = audience_get(audience)
    with transaction.atomic():
        now = clock.now()
        job, created = FanOut.objects.get_or_create(
            event_key=event_key,
            defaults={
                "kind": kind,
                "params": params,
                "about_money": about_money,
                "merchant_id": merchant_id,
                "audience": audience,
                "audience_arg": audience_arg,
                "total": members.count(audience_arg),
                "created_at": now,
                "updated_at": now,
            },
        )
        if created:
            transaction.on_commit(lambda: fanout_kick(job_id=job.pk))
    return job


def fanout_kick(*, job_id: int) -> None:
    from notifications.tasks import fanout_step_task

    try:
        fanout_step_task.delay(job_id)
    except Exception:  # noqa: BLE001 (the job is in the database; the sweep resumes it)
        log.warning("broker unavailable: fan-out %s waits for the sweep", job_id)


def fanout_step(*, job_id: int, chunk: int = FANOUT_CHUNK) -> bool:
    """Notify the next ``chunk`` people of the job in one transaction. Returns whether any remain.

    The job row is locked first, so two steps of one job (a redelivered task beside a live one)
    take turns and the second starts from the cursor the first committed."""
    with transaction.atomic(durable=True):
        job = FanOut.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in (FanOut.State.QUEUED, FanOut.State.RUNNING):
            return False
        user_ids = audience_get(job.audience).page(job.audience_arg, job.cursor, chunk)
        if user_ids:
            _notify_chunk(job=job, user_ids=user_ids)
        if job.state == FanOut.State.QUEUED:
            job.start()
        job.done += len(user_ids)
        job.cursor = user_ids[-1] if user_ids else job.cursor
        job.total = max(job.total, job.done)
        job.updated_at = clock.now()
        more = len(user_ids) == chunk
        if not more:
            job.finish()
            job.total = job.done
            job.finished_at = job.updated_at
        job.save(update_fields=["state", "done", "cursor", "total", "updated_at", "finished_at"])
    fault_point("fanout.after_chunk")
    return more


def _notify_chunk(*, job: FanOut, user_ids: list[int]) -> None:
    """The chunk's notices, all of one event, written by ``_record_many``; the text is rendered
    once per language."""
    contacts = _contacts(user_ids)
    texts: dict[str, tuple[str, str]] = {}
    rows = []
    for user_id in user_ids:
        contact = contacts.get(user_id)
        if contact is None:
            continue
        if contact.language not in texts:
            texts[contact.language] = render(kind=job.kind, params=job.params, language=contact.language)
        rows.append(_Row(user_id, job.event_key, None, job.merchant_id, *texts[contact.language]))
    _record_many(kind=job.kind, about_money=job.about_money, rows=rows, contacts=contacts)


@dataclass(frozen=True)
class Notice:
    """One person's own event, for ``notifications_send_many``."""

    user_id: int
    event_key: str
    params: dict[str, Any]
    card_id: Any = None
    merchant_id: Any = None


@dataclass(frozen=True)
class _Row:
    user_id: int
    event_key: str
    card_id: Any
    merchant_id: Any
    title: str
    body: str


def notifications_send_many(*, kind: str, notices: list[Notice], about_money: bool) -> None:
    """Tell many people of their own events of one kind at once (a batch of refunds paid), in the
    caller's transaction: what ``notification_send`` does for each, in one statement for the
    notices and one per channel for their outbox messages. A person already told of an event is
    skipped by the unique ``(user, event_key)``."""
    if kind not in Kind.values:
        raise ValueError(f"unknown notification kind {kind!r}")
    contacts = _contacts(list({notice.user_id for notice in notices}))
    rows = [
        _Row(
            notice.user_id,
            notice.event_key,
            notice.card_id,
            notice.merchant_id,
            *render(kind=kind, params=notice.params, language=contacts[notice.user_id].language),
        )
        for notice in notices
        if notice.user_id in contacts
    ]
    _record_many(kind=kind, about_money=about_money, rows=rows, contacts=contacts)


def _record_many(*, kind: str, about_money: bool, rows: list[_Row], contacts: dict[int, Contact]) -> None:
    """One statement for the notices (a person already told of the event is skipped by the unique
    key), then one per channel for their outbox messages (a key already written is skipped too)."""
    if not rows:
        return
    rows_insert(
        model=Notification,
        fields=["user", "event_key", "card_id", "merchant_id", "title", "body", "channels"],
        rows=[
            (
                row.user_id,
                row.event_key,
                row.card_id,
                row.merchant_id,
                row.title,
                row.body,
                channels_for(contacts[row.user_id], about_money=about_money),
            )
            for row in rows
        ],
        constants={"kind": kind, "about_money": about_money, "created_at": clock.now(), "read_at": None},
        ignore_conflicts=True,
    )
    wanted = {(row.user_id, row.event_key) for row in rows}
    written = Notification.objects.filter(
        event_key__in={row.event_key for row in rows}, user_id__in={row.user_id for row in rows}
    ).values_list("pk", "user_id", "event_key", "channels")
    deliveries = _deliveries(
        [(pk, contacts[user_id], channels) for pk, user_id, key, channels in written if (user_id, key) in wanted]
    )
    for topic, items in deliveries.items():
        if items:
            outbox_enqueue_many(topic=topic, items=items)


def fanouts_resume() -> int:
    """The sweep: kick every job that has not moved for two minutes (its worker died)."""
    stale = jobs_stale(FanOut)
    for job_id in stale:
        fanout_kick(job_id=job_id)
    return len(stale)
