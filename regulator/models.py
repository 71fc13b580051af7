"""Risk, flags and actions of the market regulator (complaints are ``complaints.models``).

``RiskAssessment``  one merchant's score at one time, with every signal behind it (the history the
                    audit report draws; the newest is copied onto the merchant for listing).
``RegulatorAction`` a regulator's flag, freeze or refund order against a merchant, followed by its
                    state and, for ``order_refunds``, the mass refund's progress.
``AuditEvent``      who did what, when, why and what changed: every regulator action and every
                    decision on a complaint (money movements are the journal's own entries).

Inspection cases (监督检查案件, ``regulator.services.cases``):

``InspectionCase``  an audit of one merchant, opened for a reason, assigned to an inspector, closed with a
                    conclusion. ``open → awaiting_documents`` while a request for documents waits for the
                    merchant, ``→ open`` when the last one is answered, ``→ closed`` from either (a close
                    while documents are awaited withdraws the requests). Closed is final.
``CaseFinding``     what an inspector found, with files.
``DocumentRequest`` what the regulator asks the merchant for: ``open → answered`` (the merchant's note and
                    files) or ``→ withdrawn`` (the case closed first).
``CaseFile``        a PDF, JPEG or PNG, of a finding (the inspector's) or of a request's answer (the merchant's):
                    its type read from its first bytes, its size and its SHA-256 stored with it, kept in the
                    default storage (``MEDIA_ROOT``) under a name of ours and served only as a download.
``CaseMeasure``     a regulator action (flag, freeze, refund order) taken against the merchant, linked to the
                    case as one of its measures.
``PeriodicReport``  the report on one jurisdiction for one month or quarter (escrow, filings,
                    complaints, refunds, the riskiest merchants), built in the background a
                    section at a time, with its PDF and XLSX in ``PeriodicReportFile``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
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


# --- inspection cases ------------------------------------------------------------------------------


class InspectionCase(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        OPEN = "open", pgettext_lazy("inspection case", "open")
        AWAITING_DOCUMENTS = "awaiting_documents", pgettext_lazy("inspection case", "awaiting documents")
        CLOSED = "closed", pgettext_lazy("inspection case", "closed")

    LIVE = (State.OPEN, State.AWAITING_DOCUMENTS)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey("merchants.Merchant", on_delete=models.PROTECT, related_name="inspection_cases")
    reason = models.TextField()
    state = FSMField(default=State.OPEN, choices=State.choices, protected=True)
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    conclusion = models.TextField(blank=True, default="")
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["merchant", "-created_at"], name="case_merchant_idx"),
            models.Index(fields=["state", "-created_at"], name="case_state_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state="closed", closed_at__isnull=False) | (~Q(state="closed") & Q(closed_at__isnull=True)),
                name="case_closed_at_iff_closed",
            )
        ]

    @transition(field=state, source=[State.OPEN, State.AWAITING_DOCUMENTS], target=State.AWAITING_DOCUMENTS)
    def await_documents(self) -> None:
        """The merchant is asked for documents (again, while others are still awaited)."""

    @transition(field=state, source=State.AWAITING_DOCUMENTS, target=State.OPEN)
    def documents_received(self) -> None:
        """The merchant answered the last request waiting."""

    @transition(field=state, source=[State.OPEN, State.AWAITING_DOCUMENTS], target=State.CLOSED)
    def close(self) -> None:
        """The inspection is over; its conclusion is written."""


class CaseFinding(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(InspectionCase, on_delete=models.PROTECT, related_name="findings")
    text = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["case", "created_at"], name="casefinding_case_idx")]


class DocumentRequest(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        OPEN = "open", pgettext_lazy("request for documents", "awaiting the merchant")
        ANSWERED = "answered", pgettext_lazy("request for documents", "answered")
        WITHDRAWN = "withdrawn", pgettext_lazy("request for documents", "withdrawn")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(InspectionCase, on_delete=models.PROTECT, related_name="document_requests")
    text = models.TextField()  # what the merchant is asked for
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = FSMField(default=State.OPEN, choices=State.choices, protected=True)
    answer = models.TextField(blank=True, default="")  # the merchant's note with its files
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["case", "created_at"], name="docrequest_case_idx"),
            models.Index(fields=["state", "-created_at"], name="docrequest_state_idx"),
        ]

    @transition(field=state, source=State.OPEN, target=State.ANSWERED)
    def receive_answer(self) -> None:
        """The merchant sent its files (and a note)."""

    @transition(field=state, source=State.OPEN, target=State.WITHDRAWN)
    def withdraw(self) -> None:
        """The case closed before the merchant answered."""


def case_file_path(case_file: CaseFile, filename: str) -> str:
    """``cases/<case id>/<uuid><suffix of the type found>``: the person's file name is kept in ``name``,
    never in the path."""
    return f"cases/{case_file.case_id}/{uuid.uuid4().hex}{CASE_FILE_TYPES[case_file.content_type]}"


# The content types a case file may have, and the suffix it is stored and downloaded with.
CASE_FILE_TYPES = {"application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png"}


class CaseFile(models.Model):
    """A file of a finding (uploaded by an inspector) or of a document request's answer (uploaded by
    the merchant): exactly one of the two."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(InspectionCase, on_delete=models.PROTECT, related_name="files")
    finding = models.ForeignKey(CaseFinding, null=True, blank=True, on_delete=models.PROTECT, related_name="files")
    document_request = models.ForeignKey(
        DocumentRequest, null=True, blank=True, on_delete=models.PROTECT, related_name="files"
    )
    file = models.FileField(upload_to=case_file_path, max_length=200)
    name = models.CharField(max_length=200)  # as sent, its suffix made to match the type found
    size = models.PositiveBigIntegerField()
    content_type = models.CharField(max_length=32, choices=[(t, t) for t in CASE_FILE_TYPES])
    sha256 = models.CharField(max_length=64)  # hex digest of the bytes stored
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["case", "uploaded_at"], name="casefile_case_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(finding__isnull=False, document_request__isnull=True)
                | Q(finding__isnull=True, document_request__isnull=False),
                name="casefile_of_a_finding_or_a_request",
            )
        ]


class CaseMeasure(models.Model):
    """A regulator action linked to a case as a measure taken in it (once per case)."""

    case = models.ForeignKey(InspectionCase, on_delete=models.PROTECT, related_name="measures")
    action = models.ForeignKey(RegulatorAction, on_delete=models.PROTECT, related_name="case_links")
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    linked_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "action"], name="casemeasure_once_per_case")]


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
