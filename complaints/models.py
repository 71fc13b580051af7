"""Complaints: a consumer's or a 12345 hotline caller's work order against a merchant.

The table keeps the name it was created with (``regulator_complaint``): the model moved here from
``regulator`` with a state-only migration (``complaints/migrations/0001_initial.py``).
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django_fsm import FSMField, FSMModelMixin, transition


class Complaint(FSMModelMixin, models.Model):
    class Source(models.TextChoices):
        APP = "app", _("app")
        HOTLINE = "hotline", _("12345 hotline")

    class Category(models.TextChoices):
        REFUND_REFUSED = "refund_refused", _("refund refused")
        SERVICE_QUALITY = "service_quality", _("service quality")
        SERVICE_UNAVAILABLE = "service_unavailable", _("service unavailable")
        CLOSURE = "closure", _("closed or vanished")
        MISLEADING_SALES = "misleading_sales", _("misleading sales")
        CONTRACT_TERMS = "contract_terms", _("unfair contract terms")
        OTHER = "other", _("other")

    class State(models.TextChoices):
        OPEN = "open", pgettext_lazy("complaint state", "open")
        RESPONDED = "responded", pgettext_lazy("complaint state", "responded")
        OVERDUE = "overdue", pgettext_lazy("complaint state", "overdue")
        CLOSED = "closed", pgettext_lazy("complaint state", "closed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="complaints")
    card = models.ForeignKey(
        "consumers.Card", null=True, blank=True, on_delete=models.PROTECT, related_name="complaints"
    )
    consumer = models.ForeignKey(
        "consumers.Consumer", null=True, blank=True, on_delete=models.PROTECT, related_name="complaints"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    hotline_reference = models.CharField(max_length=64, null=True, blank=True, unique=True)  # 12345 work order no.
    category = models.CharField(max_length=24, choices=Category.choices)
    description = models.TextField()
    urgent = models.BooleanField(default=False)
    state = FSMField(default=State.OPEN, choices=State.choices, protected=True)
    respond_by = models.DateTimeField()
    # The rules profile version that set respond_by; empty on complaints filed before it was recorded.
    rules_version = models.CharField(max_length=32, blank=True, default="", db_default="")
    overdue_at = models.DateTimeField(null=True, blank=True)  # when the overdue job marked it (kept after)
    response = models.TextField(blank=True, default="")
    responded_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True, default="")
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        db_table = "regulator_complaint"  # the table it was created with, when complaints were the regulator's
        indexes = [
            models.Index(fields=["merchant", "created_at"], name="complaint_merchant_created_idx"),
            models.Index(fields=["state", "respond_by"], name="complaint_state_respond_by_idx"),
            models.Index(fields=["created_at"], name="complaint_created_idx"),
        ]

    @transition(field=state, source=[State.OPEN, State.OVERDUE], target=State.RESPONDED)
    def respond(self) -> None:
        """The merchant answered (late answers are still answers; ``overdue_at`` remembers)."""

    @transition(field=state, source=State.OPEN, target=State.OVERDUE)
    def mark_overdue(self) -> None:
        """``respond_by`` passed without an answer."""

    @transition(field=state, source=[State.OPEN, State.RESPONDED, State.OVERDUE], target=State.CLOSED)
    def close(self) -> None:
        """The regulator closed it with a resolution."""
