"""Payments' own records: the sandbox bank's statement and the Stripe webhook events already acted on.

Both keep the tables they were created with (``escrow_banktransaction``, ``escrow_stripeevent``):
they moved here from ``escrow`` with state-only migrations (``payments/migrations``).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class BankTransaction(models.Model):
    """The local sandbox bank's own statement (PAYMENT_GATEWAY=local): money in is positive, money
    out negative. It is the outside record that reconciliation compares with custody."""

    class Kind(models.TextChoices):
        CHARGE = "charge", _("charge")
        REFUND = "refund", _("refund")
        PAYOUT = "payout", _("payout")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    reference = models.CharField(max_length=255, unique=True)
    amount = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "escrow_banktransaction"  # the table it was created with, when gateways were escrow's


class StripeEvent(models.Model):
    """A Stripe webhook event already handled. Stripe delivers each event at least once, so its id
    is recorded with (or right after) the handling and a second delivery is not acted on again."""

    id = models.CharField(max_length=255, primary_key=True)  # Stripe's event id, "evt_..."
    type = models.CharField(max_length=100)
    received_at = models.DateTimeField()

    class Meta:
        db_table = "escrow_stripeevent"  # the table it was created with, when webhooks were escrow's

    def __str__(self) -> str:
        return f"{self.type} {self.id}"
