"""Payments' own records: the Stripe webhook events already acted on.

``StripeEvent`` keeps the table it was created with (``escrow_stripeevent``): it moved here from
``escrow`` with a state-only migration (``payments/migrations/0001_initial.py``).
"""

from django.db import models


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
