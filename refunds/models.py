"""Refunds of cards: the four reasons of API.md and the payment back through the gateway.

A refund is booked in one transaction with its ledger entries (card escrow → refunds payable, and
any fee → merchant settlement) and an outbox message; the outbox sends it to the gateway with the
refund's idempotency key and, once the gateway has paid, the ``refund_paid`` entry moves the money
out of custody. A card has at most one refund (unique), and a refund empties the card.
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from consumers.models import Card


class Refund(FSMModelMixin, models.Model):
    class Reason(models.TextChoices):
        COOLING_OFF = "cooling_off", _("cooling-off")
        SMALL_BALANCE = "small_balance", _("small balance")
        VOLUNTARY = "voluntary", _("voluntary")
        MERCHANT_CLOSURE = "merchant_closure", _("merchant closure")

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        PAID = "paid", _("paid")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.OneToOneField(Card, on_delete=models.PROTECT, related_name="refund_record")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    amount = models.BigIntegerField()  # fen back to the consumer
    fee = models.BigIntegerField(default=0)  # fen released to the merchant
    state = FSMField(default=State.PENDING, choices=State.choices, protected=True)
    gateway = models.CharField(max_length=16)
    external_id = models.CharField(max_length=255, blank=True, default="")
    failure_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "created_at"], name="refund_state_created_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0, fee__gte=0), name="refund_amounts_non_negative")
        ]

    @transition(field=state, source=State.PENDING, target=State.PAID)
    def pay(self) -> None:
        """The gateway paid the consumer."""

    @transition(field=state, source=State.PENDING, target=State.FAILED)
    def fail(self) -> None:
        """The gateway refused, and every retry too: left for an operator."""

    @transition(field=state, source=State.FAILED, target=State.PENDING)
    def retry(self) -> None:
        """An operator sends it again."""
