"""Shared tables: users with their role, stored idempotent responses, worker heartbeats."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition


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

    @property
    def needs_second_factor(self) -> bool:
        """Signs in with a password and the code of a TOTP authenticator (regulators: 等保 level 3
        asks two factors of those who administer a system)."""
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


class OutboxMessage(FSMModelMixin, models.Model):
    """A call to the outside world (the payment gateway), written in the same transaction as the
    ledger entry that needs it and sent afterwards by a task, with ``idempotency_key``, so that a
    crash between the two neither loses nor repeats it."""

    class State(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        DEAD = "dead"

    topic = models.CharField(max_length=64)
    payload = models.JSONField()
    idempotency_key = models.CharField(max_length=255, unique=True)
    state = FSMField(default=State.PENDING, choices=State.choices, protected=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="outbox_state_due_idx")]

    @transition(field=state, source=State.PENDING, target=State.SENT)
    def mark_sent(self) -> None:
        """The outside world acknowledged it."""

    @transition(field=state, source=State.PENDING, target=State.DEAD)
    def give_up(self) -> None:
        """Every attempt failed; an operator must look."""

    @transition(field=state, source=State.DEAD, target=State.PENDING)
    def revive(self) -> None:
        """An operator sends it again."""
