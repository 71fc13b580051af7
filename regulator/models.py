"""Risk, flags and actions of the market regulator (complaints are ``complaints.models``).

``RiskAssessment``  one merchant's score at one time, with every signal behind it (the history the
                    audit report draws; the newest is copied onto the merchant for listing).
``RegulatorAction`` a regulator's flag, freeze or refund order against a merchant, followed by its
                    state and, for ``order_refunds``, the mass refund's progress.
``AuditEvent``      who did what, when, why and what changed: every regulator action and every
                    decision on a complaint (money movements are the journal's own entries).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition


class RiskLevel(models.TextChoices):
    LOW = "low", _("low")
    MEDIUM = "medium", _("medium")
    HIGH = "high", _("high")


class RiskAssessment(models.Model):
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="risk_assessments")
    computed_at = models.DateTimeField()
    score = models.PositiveSmallIntegerField()  # 0-100
    level = models.CharField(max_length=8, choices=RiskLevel.choices)
    # [{name, value, weight, contribution, explanation_zh, explanation_en}, ...]
    signals = models.JSONField()

    class Meta:
        indexes = [models.Index(fields=["merchant", "-computed_at"], name="risk_merchant_computed_idx")]
        constraints = [models.CheckConstraint(condition=Q(score__lte=100), name="risk_score_at_most_100")]


class AuditEvent(models.Model):
    """One line of the regulator's audit log. Written in the same transaction as the change."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_label = models.CharField(max_length=64, blank=True, default="")  # "system" for jobs
    verb = models.CharField(max_length=32)  # flag, freeze_sales, complaint_close, risk_auto_flag, ...
    merchant = models.ForeignKey(
        "merchants.Merchant", null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    target = models.CharField(max_length=64, blank=True, default="")  # "complaint:<id>", "action:<id>"
    reason = models.TextField(blank=True, default="")
    changes = models.JSONField(default=dict)  # {"field": [before, after], ...}
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["-created_at"], name="auditevent_created_idx"),
            models.Index(fields=["merchant", "-created_at"], name="auditevent_merchant_idx"),
        ]


class RegulatorAction(FSMModelMixin, models.Model):
    class Action(models.TextChoices):
        FLAG = "flag", _("flag")
        UNFLAG = "unflag", _("unflag")
        FREEZE_SALES = "freeze_sales", _("freeze sales")
        UNFREEZE_SALES = "unfreeze_sales", _("unfreeze sales")
        FREEZE_RELEASES = "freeze_releases", _("freeze releases")
        UNFREEZE_RELEASES = "unfreeze_releases", _("unfreeze releases")
        ORDER_REFUNDS = "order_refunds", _("order refunds")

    class State(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="regulator_actions")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    reason = models.TextField()
    state = FSMField(default=State.QUEUED, choices=State.choices, protected=True)
    mass_refund = models.OneToOneField(
        "refunds.MassRefund", null=True, blank=True, on_delete=models.PROTECT, related_name="regulator_action"
    )
    detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["merchant", "-created_at"], name="regaction_merchant_idx")]

    @transition(field=state, source=State.QUEUED, target=State.RUNNING)
    def start(self) -> None:
        """The background work began."""

    @transition(field=state, source=[State.QUEUED, State.RUNNING], target=State.DONE)
    def finish(self) -> None:
        """The change is made (at once for flags and freezes; after the last refund for orders)."""

    @transition(field=state, source=[State.QUEUED, State.RUNNING], target=State.FAILED)
    def fail(self) -> None:
        """The background work stopped for a reason a retry will not fix; ``detail`` says which."""


class RegulatorScope(models.Model):
    """A regulator's jurisdiction (``regulator.selectors.jurisdiction``): the districts (GB/T 2260
    codes, ``merchants.registry``) and the merchant categories it oversees. An empty list means all of
    them; a regulator without a row oversees the whole city. Written by ``regulator_scope_set``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="regulator_scope"
    )
    districts = models.JSONField(default=list, blank=True)  # ["110105", ...]; [] = every district
    categories = models.JSONField(default=list, blank=True)  # ["education", ...]; [] = every category
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = _("regulator's jurisdiction")
        verbose_name_plural = _("regulators' jurisdictions")

    def __str__(self) -> str:
        return f"{self.user_id}: {','.join(self.districts) or '*'} / {','.join(self.categories) or '*'}"
