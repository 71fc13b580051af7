"""Refunds of cards: the reasons of API.md and the payment back through the gateway.

A refund is booked in one transaction with its ledger entries (card escrow → refunds payable, and
any fee → merchant settlement) and an outbox message; the outbox sends it to the gateway with the
refund's idempotency key and, once the gateway has paid, the ``refund_paid`` entry moves the money
out of custody. A card has at most one refund of the card (unique), and it empties the card. A
top-up returned within its own cooling-off period is a refund too (``top_up`` set, at most one a
top-up): it returns that top-up's money through that top-up's payment, and the card holds the rest.

A mass refund books a chunk of cards in one transaction and, with the local gateway, its refunds
are paid a chunk per transaction too (``refunds.services.refunds_deliver_batch``): still one
``refund_paid`` entry per refund, under the refund's own key.

Every refund must be paid by ``due_by`` (the request's time + the rules profile's ``refund_due_days``;
``rules_version`` records the version of the profile that set it). ``attempts`` and
``last_error`` follow its deliveries to the gateway; ``overdue_at`` is set once by the periodic job
(``refunds_mark_overdue``) when it is still unpaid at ``due_by``, and stays, so a late payment is
still seen as late. A ``failed`` refund waits for an operator's ``retry``.

``RefundEntitlement`` is a fact the refunds app keeps for the apps above it: this card may be
refunded in full as ``merchant_default`` (the regulator upheld a complaint about it).
"""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from consumers.models import Card, TopUp
from core import clock
from core.jobs import Job


class Refund(FSMModelMixin, models.Model):
    class Reason(models.TextChoices):
        COOLING_OFF = "cooling_off", _("cooling-off")
        SMALL_BALANCE = "small_balance", _("small balance")
        VOLUNTARY = "voluntary", _("voluntary")
        MERCHANT_CLOSURE = "merchant_closure", _("merchant closure")
        MERCHANT_DEFAULT = "merchant_default", _("merchant in default")

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        PAID = "paid", _("paid")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="refund_records")
    # Set for a top-up's cooling-off refund (only that top-up's money); None for the card's own.
    top_up = models.OneToOneField(TopUp, on_delete=models.PROTECT, null=True, blank=True, related_name="refund_record")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    amount = models.BigIntegerField()  # fen back to the consumer
    fee = models.BigIntegerField(default=0)  # fen released to the merchant
    state = FSMField(default=State.PENDING, choices=State.choices, protected=True)
    gateway = models.CharField(max_length=16)
    external_id = models.CharField(max_length=255, blank=True, default="")
    failure_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    due_by = models.DateTimeField()  # created_at + the profile's refund_due_days
    # The rules profile version that set due_by; empty on refunds booked before it was recorded.
    rules_version = models.CharField(max_length=32, blank=True, default="", db_default="")
    paid_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)  # sends to the gateway so far
    last_error = models.TextField(blank=True, default="")  # the gateway's last refusal
    overdue_at = models.DateTimeField(null=True, blank=True)  # when the job found it unpaid past due_by

    class Meta:
        indexes = [
            models.Index(fields=["state", "created_at"], name="refund_state_created_idx"),
            # the overdue job and the regulator's list: unpaid refunds by deadline
            models.Index(fields=["state", "due_by"], name="refund_state_due_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gte=0, fee__gte=0), name="refund_amounts_non_negative"),
            # The card's own refund, once (a top-up's refunds are once each by their one-to-one).
            models.UniqueConstraint(fields=["card"], condition=Q(top_up__isnull=True), name="refund_card_once"),
        ]

    @property
    def overdue(self) -> bool:
        """Marked overdue by the job, or unpaid past ``due_by`` by the clock (every reader checks the
        clock itself, so nothing depends on when the job ran)."""
        if self.overdue_at is not None:
            return True
        return self.state != self.State.PAID and self.due_by is not None and clock.now() > self.due_by

    @transition(field=state, source=State.PENDING, target=State.PAID)
    def pay(self) -> None:
        """The gateway paid the consumer."""

    @transition(field=state, source=State.PENDING, target=State.FAILED)
    def fail(self) -> None:
        """The gateway refused, and every retry too: left for an operator."""

    @transition(field=state, source=State.FAILED, target=State.PENDING)
    def retry(self) -> None:
        """An operator sends it again."""


class RefundEntitlement(models.Model):
    """A card its holder may have refunded in full as ``merchant_default`` whatever its merchant's
    standing: the regulator upheld a complaint about it (``source``: "complaint:<id>"). Written by
    ``refund_entitlement_record``, which the complaint's close calls (complaints live above refunds)."""

    class Reason(models.TextChoices):
        COMPLAINT_UPHELD = "complaint_upheld", _("complaint upheld")

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="refund_entitlements")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    source = models.CharField(max_length=64)
    actor = models.ForeignKey("core.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["card", "source"], name="refund_entitlement_once")]


class MassRefund(Job):
    """Refunding every card of a merchant that still holds escrow (the merchant closed, or the
    regulator ordered it), or, on the day of a change of operator (``operator_change``), every card
    whose holder did not consent to continue. Runs in the background a chunk at a time; ``done`` of
    ``total`` is its progress. A chunk takes the next cards still to refund, so a crashed chunk is
    simply taken again and no card is refunded twice (a card has at most one refund)."""

    class Reason(models.TextChoices):
        MERCHANT_CLOSURE = "merchant_closure", _("merchant closure")
        REGULATOR_ORDER = "regulator_order", _("regulator order")
        OPERATOR_CHANGE = "operator_change", _("change of operator")

    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="mass_refunds")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    actor = models.ForeignKey("core.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The change of operator whose non-consenting cards it refunds (reason operator_change only).
    operator_change = models.ForeignKey(
        "merchants.OperatorChange", null=True, blank=True, on_delete=models.PROTECT, related_name="mass_refunds"
    )

    class Meta:
        indexes = [models.Index(fields=["state", "updated_at"], name="massrefund_state_updated_idx")]
