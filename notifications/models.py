"""Notifications to any user (consumer or merchant), their preferences and fan-out jobs.

- ``Notification``: one notice to one user about one event. ``(user, event_key)`` is unique, so an
  event reaches a person once however often (or however concurrently) it is sent. Title and body
  are rendered at sending time in the person's language. ``channels`` lists where it went: always
  ``in_app``, and ``sms``/``email`` when an outbox message (key ``notify:<id>:<channel>``) was
  written for it; ``undelivered`` lists the channels whose message died.
- ``NotificationSettings``: one per user: phone for SMS, the SMS and e-mail switches, the language.
  (The e-mail address is the user's own ``email``.)
- ``FanOut``: one event sent to a whole audience (every holder of a merchant's cards) in the
  background, a chunk per transaction; ``cursor`` is the last user id done, so a killed job resumes
  where its last committed chunk ended. ``queued → running → done`` (or ``failed``).

Ids of cards and merchants are plain UUIDs: this app sits below the apps that own them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.jobs import Job


class Kind(models.TextChoices):
    SERVICE_REQUESTED = "service_requested", _("service to confirm")
    COOLING_OFF_ENDING = "cooling_off_ending", _("cooling-off ending")
    REFUND_PAID = "refund_paid", _("refund paid")
    REFUND_LATE = "refund_late", _("refund late")
    MERCHANT_FLAGGED = "merchant_flagged", _("merchant flagged")
    MERCHANT_FROZEN = "merchant_frozen", _("merchant frozen")
    MERCHANT_CLOSING = "merchant_closing", _("merchant closing")
    MERCHANT_RELOCATING = "merchant_relocating", _("merchant relocating")
    MERCHANT_OPERATOR_CHANGING = "merchant_operator_changing", _("merchant's operator changing")
    CARD_TRANSFER_OFFERED = "card_transfer_offered", _("card transfer offered")
    CARD_TRANSFER_ACCEPTED = "card_transfer_accepted", _("card transfer accepted")
    CARD_TRANSFER_RECEIVED = "card_transfer_received", _("card received by transfer")
    CARD_TRANSFER_DECLINED = "card_transfer_declined", _("card transfer declined")
    CARD_TRANSFER_CANCELLED = "card_transfer_cancelled", _("card transfer withdrawn")
    CARD_TRANSFER_EXPIRED = "card_transfer_expired", _("card transfer expired")
    CARD_TRANSFERRED = "card_transferred", _("card transferred (to the merchant)")
    COMPLAINT_DUE = "complaint_due", _("complaint due")
    DOCUMENTS_REQUESTED = "documents_requested", _("documents requested")
    DISPUTE_OPENED = "dispute_opened", _("service contested")
    DISPUTE_DECIDED = "dispute_decided", _("dispute decided")


class Channel(models.TextChoices):
    IN_APP = "in_app", _("in the app")
    SMS = "sms", _("SMS")
    EMAIL = "email", _("e-mail")


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    event_key = models.CharField(max_length=200)
    title = models.CharField(max_length=200)
    body = models.TextField()
    card_id = models.UUIDField(null=True, blank=True)
    merchant_id = models.UUIDField(null=True, blank=True)
    about_money = models.BooleanField(default=False)
    channels = models.JSONField(default=list)
    undelivered = models.JSONField(default=list)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_user_idx"),
            # The bell: an index-only COUNT of a user's unread notices.
            models.Index(fields=["user"], condition=models.Q(read_at__isnull=True), name="notification_unread_idx"),
        ]
        constraints = [models.UniqueConstraint(fields=["user", "event_key"], name="notification_once_per_event")]


class NotificationSettings(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, primary_key=True, related_name="notification_settings"
    )
    phone = models.CharField(max_length=20, blank=True, default="")
    notify_sms = models.BooleanField(default=True)
    notify_email = models.BooleanField(default=True)
    language = models.CharField(max_length=8, default=settings.LANGUAGE_CODE)


class FanOut(Job):
    kind = models.CharField(max_length=32, choices=Kind.choices)
    event_key = models.CharField(max_length=200, unique=True)
    params = models.JSONField(default=dict)
    about_money = models.BooleanField(default=False)
    merchant_id = models.UUIDField(null=True, blank=True)
    audience = models.CharField(max_length=64)
    audience_arg = models.CharField(max_length=200, blank=True, default="")
    cursor = models.BigIntegerField(default=0)  # the last user id done

    class Meta:
        indexes = [models.Index(fields=["state", "updated_at"], name="fanout_state_updated_idx")]
