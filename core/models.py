"""Shared tables: users with their role, stored idempotent responses, worker heartbeats."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    class Role(models.TextChoices):
        CONSUMER = "consumer", _("consumer")
        MERCHANT = "merchant", _("merchant")
        REGULATOR = "regulator", _("regulator")

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.CONSUMER)

    class Meta:
        db_table = "core_user"

    @property
    def is_consumer(self) -> bool:
        return self.role == self.Role.CONSUMER

    @property
    def is_merchant(self) -> bool:
        return self.role == self.Role.MERCHANT

    @property
    def is_regulator(self) -> bool:
        return self.role == self.Role.REGULATOR


class IdempotencyRecord(models.Model):
    """The first response to a request sent with an ``Idempotency-Key`` (API.md, Conventions).

    ``caller`` is ``user:<id>`` (or ``anonymous``); the pair (caller, key) is unique, so two racing
    requests with one key cannot both run. ``fingerprint`` is a SHA-256 over method, path and the
    canonical JSON body: the same key with another fingerprint is a conflict.
    """

    class State(models.TextChoices):
        STARTED = "started"
        COMPLETED = "completed"

    caller = models.CharField(max_length=64)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=State.choices, default=State.STARTED)
    status_code = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    created_at = models.DateTimeField()
    locked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["caller", "key"], name="idempotency_caller_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created_idx")]


class WorkerHeartbeat(models.Model):
    """Last time a background process proved it was running (beat schedules, the worker runs)."""

    name = models.CharField(max_length=64, primary_key=True)
    last_seen = models.DateTimeField()
