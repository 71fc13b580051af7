"""Risk, flags and actions of the market regulator (complaints are ``complaints.models``).

``RiskAssessment``  one merchant's score at one time, with every signal behind it (the history the
                    audit report draws; the newest is copied onto the merchant for listing).
``RegulatorAction`` a regulator's flag, freeze or refund order against a merchant, followed by its
                    state and, for ``order_refunds``, the mass refund's progress.
``AuditEvent``      who did what, when, why and what changed: every regulator action and every
                    decision on a complaint (money movements are the journal's own entries).
``PeriodicReport``  the report on one jurisdiction for one month or quarter (escrow, filings,
                    complaints, refunds, the riskiest merchants), built in the background a
                    section at a time, with its PDF and XLSX in ``PeriodicReportFile``.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from core.jobs import Job


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


class PeriodicReport(Job):
    """One generation of the periodic report of a jurisdiction for a month or a quarter
    (``regulator.services.periodic_reports``). A job (``core.jobs``): ``queued → running → done``
    (or ``failed`` with ``detail``), ``done`` of ``total`` steps, one section of figures a step and
    the files last. ``figures`` holds the sections as they are computed; the PDF and the XLSX are
    written from them alone. The jurisdiction is a snapshot (``districts``/``categories``, None for
    all) with a canonical ``jurisdiction_key``; one (jurisdiction, period) has generation 1, and a
    regulator's "generate again" adds the next one. ``requested_by`` is None for the scheduled job."""

    class Period(models.TextChoices):
        MONTH = "month", _("month")
        QUARTER = "quarter", _("quarter")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    period = models.CharField(max_length=8, choices=Period.choices)
    year = models.PositiveSmallIntegerField()
    number = models.PositiveSmallIntegerField()  # the month (1-12) or the quarter (1-4)
    starts_at = models.DateTimeField()  # 00:00 Beijing on the first day
    ends_at = models.DateTimeField()  # 00:00 Beijing on the first day of the next period
    jurisdiction_key = models.CharField(max_length=400)
    districts = models.JSONField(null=True, blank=True)  # district codes, None: the whole city
    categories = models.JSONField(null=True, blank=True)  # merchant categories, None: all
    generation = models.PositiveSmallIntegerField(default=1)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    figures = models.JSONField(default=dict)
    as_of = models.DateTimeField(null=True, blank=True)  # when the figures were read (the first step)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["jurisdiction_key", "period", "year", "number", "generation"],
                name="periodic_report_generation_once",
            ),
            models.CheckConstraint(
                condition=Q(period="month", number__gte=1, number__lte=12)
                | Q(period="quarter", number__gte=1, number__lte=4),
                name="periodic_report_number_in_period",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "updated_at"], name="periodicreport_state_idx"),
            models.Index(fields=["-created_at"], name="periodicreport_created_idx"),
        ]


class PeriodicReportFile(models.Model):
    """A generated report's PDF or XLSX, kept in the database: the worker writes it and the web
    serves it (they share the database, not a disk), and it commits with the report's ``done``."""

    class Kind(models.TextChoices):
        PDF = "pdf", "PDF"
        XLSX = "xlsx", "XLSX"

    report = models.ForeignKey(PeriodicReport, on_delete=models.PROTECT, related_name="files")
    kind = models.CharField(max_length=4, choices=Kind.choices)
    content = models.BinaryField()
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "kind"], name="periodic_report_file_once")]
