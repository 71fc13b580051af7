"""Merchants and the products (card plans) they sell."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from escrow.models import Account


class Merchant(FSMModelMixin, models.Model):
    class Category(models.TextChoices):
        FITNESS = "fitness", _("fitness")
        BEAUTY = "beauty", _("beauty")
        EDUCATION = "education", _("education")
        CATERING = "catering", _("catering")
        LAUNDRY = "laundry", _("laundry")
        OTHER = "other", _("other")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        CLOSING = "closing", _("closing")
        CLOSED = "closed", _("closed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="merchant")
    name = models.CharField(max_length=200)
    license_number = models.CharField(max_length=18, unique=True)
    category = models.CharField(max_length=16, choices=Category.choices)
    district = models.CharField(max_length=6)  # GB/T 2260 code, see merchants.registry
    address = models.CharField(max_length=300)
    status = FSMField(default=Status.ACTIVE, choices=Status.choices, protected=True)
    sales_frozen = models.BooleanField(default=False)
    releases_frozen = models.BooleanField(default=False)
    flagged = models.BooleanField(default=False)
    risk_warning = models.TextField(null=True, blank=True)
    # The newest regulator.RiskAssessment, copied here so the regulator's list filters and sorts on it.
    risk_score = models.PositiveSmallIntegerField(default=0)
    risk_level = models.CharField(max_length=8, default="low")
    risk_computed_at = models.DateTimeField(null=True, blank=True)
    settlement_account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="merchant")
    # The merchant's own share of custody and of refunds payable: its purchases, refunds and
    # payouts post here, so they never lock an account another merchant's money moves through.
    # Null for a merchant signed up before they existed, until ``manage.py ledger_split_custody``
    # opens them; until then it uses the city-wide accounts (``merchants.accounts``).
    custody_account = models.OneToOneField(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="custody_of"
    )
    refund_payable_account = models.OneToOneField(
        Account, null=True, blank=True, on_delete=models.PROTECT, related_name="refunds_payable_of"
    )
    stripe_account_id = models.CharField(max_length=64, blank=True, default="")
    closes_on = models.DateField(null=True, blank=True)  # announced closing day (Beijing)
    closure_reason = models.TextField(blank=True, default="")
    closure_announced_at = models.DateTimeField(null=True, blank=True)
    # The rules profile version whose closure_notice_days the notice was checked against.
    closure_rules_version = models.CharField(max_length=32, blank=True, default="", db_default="")
    # The last Beijing day of the newest relocation notice's refund window (merchants.services.relocation):
    # its holders may take a merchant_default refund until then. Cleared when the notice is withdrawn.
    relocation_refund_until = models.DateField(null=True, blank=True)
    # The day an approved change of operator takes effect, while it is pending (merchants.services.
    # operator_change): from then the cards whose holders did not consent are refunded.
    operator_changes_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["district", "category"], name="merchant_district_category_idx"),
            models.Index(fields=["status", "closes_on"], name="merchant_status_closes_idx"),
            models.Index(fields=["-risk_score"], name="merchant_risk_score_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def selling(self) -> bool:
        return self.status == self.Status.ACTIVE and not self.sales_frozen

    @transition(field=status, source=Status.ACTIVE, target=Status.CLOSING)
    def announce_closure(self) -> None:
        """Notice given: sales stop, cards are refunded on the closing day."""

    @transition(field=status, source=[Status.ACTIVE, Status.CLOSING], target=Status.CLOSED)
    def close(self) -> None:
        """Every card refunded and the final settlement made."""


class Product(models.Model):
    class Kind(models.TextChoices):
        STORED_VALUE = "stored_value", _("stored value")
        SESSION_PACK = "session_pack", _("session pack")
        PERIOD_PASS = "period_pass", _("period pass")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="products")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    price = models.BigIntegerField()  # fen paid
    face_value = models.BigIntegerField(null=True, blank=True)  # stored_value: fen of service
    unit_price = models.BigIntegerField(null=True, blank=True)  # stored_value: cheapest single service
    sessions = models.PositiveIntegerField(null=True, blank=True)  # session_pack
    days = models.PositiveIntegerField(null=True, blank=True)  # period_pass
    refund_fee_bps = models.PositiveIntegerField(default=0)
    on_sale = models.BooleanField(default=True)
    # The rules profile's version (core.rules.profile_version()) whose limits the plan was checked
    # against when it was put on sale; "" for plans older than the record.
    rules_version = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["merchant", "on_sale"], name="product_merchant_on_sale_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(price__gt=0), name="product_price_positive"),
            models.CheckConstraint(condition=Q(refund_fee_bps__lte=2000), name="product_refund_fee_bps_max"),
            models.CheckConstraint(
                condition=~Q(kind="stored_value")
                | Q(face_value__gte=models.F("price"), unit_price__gt=0, unit_price__lte=models.F("face_value")),
                name="product_stored_value_terms",
            ),
            models.CheckConstraint(
                condition=~Q(kind="session_pack") | Q(sessions__gte=1), name="product_session_terms"
            ),
            models.CheckConstraint(condition=~Q(kind="period_pass") | Q(days__gte=1), name="product_period_terms"),
        ]

    def __str__(self) -> str:
        return self.name


class SettlementRun(FSMModelMixin, models.Model):
    """One day's settlement for every merchant: the ledger's releases and refund fees credited to
    merchant settlement accounts in ``(since, cutoff]``.

    A run never rewrites a posting: its window is a time range over the journal, and consecutive
    runs' windows meet (``since`` is the previous run's ``cutoff``), so every release is settled
    exactly once. Postings are committed within milliseconds; the job settles a day two hours after
    it ends, so no release can commit into a window that was already settled.
    """

    class State(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")

    date = models.DateField(unique=True)  # the Beijing day settled
    since = models.DateTimeField()
    cutoff = models.DateTimeField()
    state = FSMField(default=State.RUNNING, choices=State.choices, protected=True)
    merchants_total = models.PositiveIntegerField(default=0)
    merchants_done = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    @transition(field=state, source=State.RUNNING, target=State.DONE)
    def finish(self) -> None:
        """Every merchant's settlement of the day exists."""


class Settlement(FSMModelMixin, models.Model):
    """A merchant's settlement of one day and its payout."""

    class PayoutState(models.TextChoices):
        PENDING = "pending", _("pending")
        PAID = "paid", _("paid")
        HELD = "held", _("held")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, editable=False)  # derived from (run, merchant): reruns find it
    run = models.ForeignKey(SettlementRun, on_delete=models.PROTECT, related_name="settlements")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="settlements")
    date = models.DateField()
    since = models.DateTimeField()
    cutoff = models.DateTimeField()
    released = models.BigIntegerField()  # fen released by confirmed services (and pass accruals)
    fees = models.BigIntegerField()  # fen of refund fees
    releases_count = models.PositiveIntegerField(default=0)
    refunds_count = models.PositiveIntegerField(default=0)
    payout_amount = models.BigIntegerField()
    payout_state = FSMField(default=PayoutState.PENDING, choices=PayoutState.choices, protected=True)
    payout_reference = models.CharField(max_length=255, blank=True, default="")
    held_reason = models.CharField(max_length=300, blank=True, default="")
    # Raised when an operator sends a refused payout again: the gateway answers a key it refused
    # with the same refusal, so a new attempt needs a new key (the refused one paid nothing).
    payout_attempt = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "date"], name="settlement_merchant_date_unique"),
            models.CheckConstraint(
                condition=Q(released__gte=0, fees__gte=0, payout_amount__gte=0), name="settlement_amounts_non_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "-date"], name="settlement_merchant_date_idx"),
            # The few payouts an operator must look at (held, refused), for /metrics and the alerts.
            models.Index(
                fields=["payout_state"],
                condition=Q(payout_state__in=["held", "failed"]),
                name="settlement_payout_open_idx",
            ),
        ]

    @property
    def payout_key(self) -> str:
        """The idempotency key the gateway pays this settlement under."""
        return self.payout_key_of(self.pk, self.payout_attempt)

    @staticmethod
    def payout_key_of(settlement_id: object, attempt: int = 0) -> str:
        """The gateway's key for ``attempt`` of the payout of settlement ``settlement_id``."""
        return f"payout:{settlement_id}" if not attempt else f"payout:{settlement_id}:{attempt}"

    @transition(field=payout_state, source=PayoutState.PENDING, target=PayoutState.PAID)
    def pay(self) -> None:
        """The gateway paid the merchant."""

    @transition(field=payout_state, source=PayoutState.PENDING, target=PayoutState.HELD)
    def hold(self) -> None:
        """The payout cannot be made yet (e.g. no connected account); the money stays owed."""

    @transition(field=payout_state, source=PayoutState.HELD, target=PayoutState.PENDING)
    def release_hold(self) -> None:
        """The reason for holding is gone; pay it."""

    @transition(field=payout_state, source=PayoutState.PENDING, target=PayoutState.FAILED)
    def fail(self) -> None:
        """The gateway refused every attempt; an operator must look."""

    @transition(field=payout_state, source=PayoutState.FAILED, target=PayoutState.PENDING)
    def retry(self) -> None:
        """An operator sends a failed payout again."""


class Filing(FSMModelMixin, models.Model):
    """A merchant's filing (备案) with the regulator, required when a trigger of the rules profile is
    met (merchants.services.filing).

    ``required`` (created by the daily check, with the day it is due) → ``submitted`` (the merchant's
    registration details and documents) → ``accepted`` or ``returned`` (the regulator's note); a
    returned filing is submitted again. A filing is *overdue* while it is required or returned and
    its deadline (``due_by``, 24:00 Beijing time of ``due_on``) has passed: a flag derived from the
    time, not a state. A merchant has at most one open filing; an accepted one ends the obligation.
    The trigger (the rule's key, the value measured, the rule's value) and the profile's key and
    version record what decided the filing and its deadline."""

    class State(models.TextChoices):
        REQUIRED = "required", _("required")
        SUBMITTED = "submitted", _("submitted")
        ACCEPTED = "accepted", _("accepted")
        RETURNED = "returned", _("returned")

    OPEN = (State.REQUIRED, State.SUBMITTED, State.RETURNED)
    AWAITING_MERCHANT = (State.REQUIRED, State.RETURNED)  # the states in which it can be overdue

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="filings")
    state = FSMField(default=State.REQUIRED, choices=State.choices, protected=True)
    trigger = models.CharField(max_length=64)  # the rule's key, e.g. filing_balance_threshold
    measured = models.BigIntegerField()  # the merchant's figure that met it (fen or cards, the rule's unit)
    threshold = models.BigIntegerField()  # the rule's value when it was met
    unit = models.CharField(max_length=16)
    profile = models.CharField(max_length=32)  # the rules profile's key and version that decided it
    profile_version = models.CharField(max_length=32)
    due_on = models.DateField()  # the last day to file (Beijing)
    due_by = models.DateTimeField()  # the deadline instant: 00:00 Beijing after due_on, in UTC
    legal_representative = models.CharField(max_length=100, blank=True, default="")
    contact_phone = models.CharField(max_length=20, blank=True, default="")
    deposit_bank = models.CharField(max_length=200, blank=True, default="")  # where prepaid funds are kept
    details = models.TextField(blank=True, default="")
    submissions = models.PositiveSmallIntegerField(default=0)
    regulator_note = models.TextField(blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"],
                condition=Q(state__in=["required", "submitted", "returned"]),
                name="filing_one_open_per_merchant",
            ),
            models.UniqueConstraint(
                fields=["merchant"], condition=Q(state="accepted"), name="filing_one_accepted_per_merchant"
            ),
        ]
        indexes = [models.Index(fields=["state", "due_by"], name="filing_state_due_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.trigger} ({self.state})"

    @property
    def overdue(self) -> bool:
        from core import clock

        return self.state in self.AWAITING_MERCHANT and self.due_by <= clock.now()

    @transition(field=state, source=[State.REQUIRED, State.RETURNED], target=State.SUBMITTED)
    def submit(self) -> None:
        """The merchant sent its details and documents."""

    @transition(field=state, source=State.SUBMITTED, target=State.ACCEPTED)
    def accept(self) -> None:
        """The regulator accepted the filing: the merchant is filed."""

    @transition(field=state, source=State.SUBMITTED, target=State.RETURNED)
    def return_to_merchant(self) -> None:
        """The regulator sent it back with a note; the merchant submits it again."""


def filing_document_path(document: "FilingDocument", filename: str) -> str:
    """``filings/<filing id>/<submission>/<uuid><suffix>``: the person's file name is kept in ``name``,
    never in the path."""
    from pathlib import PurePath

    suffix = PurePath(filename).suffix.lower()[:8]
    return f"filings/{document.filing_id}/{document.submission}/{uuid.uuid4().hex}{suffix}"


class FilingDocument(models.Model):
    """A document sent with one submission of a filing (licence, deposit agreement, ...), kept in the
    default storage (MEDIA_ROOT) and served only to its merchant and the regulator."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    filing = models.ForeignKey(Filing, on_delete=models.PROTECT, related_name="documents")
    submission = models.PositiveSmallIntegerField()  # which submission of the filing it came with
    file = models.FileField(upload_to=filing_document_path, max_length=200)
    name = models.CharField(max_length=200)  # the file's name as the merchant sent it
    size = models.PositiveIntegerField()
    content_type = models.CharField(max_length=100)
    uploaded_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["filing", "submission"], name="filingdoc_filing_sub_idx")]


class Relocation(FSMModelMixin, models.Model):
    """A merchant's notice of moving (merchants.services.relocation).

    ``notified`` (every holder told; each may take a ``merchant_default`` refund until
    ``refund_until``) → ``moved`` (on ``moves_on`` the new address and district became the
    merchant's; the window stays open until ``refund_until``), or ``cancelled`` (the merchant withdrew
    the notice before the move; the window closes). ``old_address``/``old_district`` are where it was
    when it gave notice; ``rules_version`` the profile whose notice and refund days were applied."""

    class State(models.TextChoices):
        NOTIFIED = "notified", _("notice given")
        MOVED = "moved", _("moved")
        CANCELLED = "cancelled", _("notice withdrawn")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="relocations")
    state = FSMField(default=State.NOTIFIED, choices=State.choices, protected=True)
    moves_on = models.DateField()  # the moving day (Beijing)
    address = models.CharField(max_length=300)  # the new address
    district = models.CharField(max_length=6)  # the new district's GB/T 2260 code
    old_address = models.CharField(max_length=300)
    old_district = models.CharField(max_length=6)
    refund_until = models.DateField()  # moves_on + the profile's relocation_refund_days_after
    rules_version = models.CharField(max_length=32)
    consumers_notified = models.PositiveIntegerField(default=0)  # the fan-out's audience when notice was given
    notified_at = models.DateTimeField()
    moved_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"], condition=Q(state="notified"), name="relocation_one_pending_per_merchant"
            ),
            models.CheckConstraint(condition=Q(refund_until__gte=models.F("moves_on")), name="relocation_window"),
        ]
        indexes = [models.Index(fields=["state", "moves_on"], name="relocation_state_moves_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id} → {self.address} on {self.moves_on} ({self.state})"

    @transition(field=state, source=State.NOTIFIED, target=State.MOVED)
    def move(self) -> None:
        """The moving day came: the new address is the merchant's."""

    @transition(field=state, source=State.NOTIFIED, target=State.CANCELLED)
    def cancel(self) -> None:
        """The merchant withdrew the notice before moving."""


class OperatorChange(FSMModelMixin, models.Model):
    """A change of the operator behind a merchant (merchants.services.operator_change).

    ``requested`` (by the merchant, or the regulator on its behalf) → ``approved`` (by the regulator;
    every holder with escrow left is asked to consent) → ``completed`` (on ``changes_on`` the cards
    whose holders did not consent were refunded, and the new operator's name and licence number became
    the merchant's), or ``rejected``. The old operator's name and licence are kept here, so the
    merchant's particulars on any past day can be told (``merchants.selectors.merchant_particulars_on``)."""

    class State(models.TextChoices):
        REQUESTED = "requested", _("awaiting the regulator")
        APPROVED = "approved", _("approved")
        REJECTED = "rejected", _("rejected")
        COMPLETED = "completed", _("completed")

    OPEN = (State.REQUESTED, State.APPROVED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="operator_changes")
    state = FSMField(default=State.REQUESTED, choices=State.choices, protected=True)
    changes_on = models.DateField()  # the Beijing day the new operator takes over
    old_operator_name = models.CharField(max_length=200)
    old_license_number = models.CharField(max_length=18)
    new_operator_name = models.CharField(max_length=200)
    new_license_number = models.CharField(max_length=18)
    reason = models.TextField(blank=True, default="")
    rules_version = models.CharField(max_length=32)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    regulator_note = models.TextField(blank=True, default="")
    consumers_notified = models.PositiveIntegerField(default=0)  # the fan-out's audience at approval
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant"],
                condition=Q(state__in=["requested", "approved"]),
                name="operatorchange_one_open_per_merchant",
            ),
            # A licence number an open change will give its merchant is nobody else's to take.
            models.UniqueConstraint(
                fields=["new_license_number"],
                condition=Q(state__in=["requested", "approved"]),
                name="operatorchange_open_licence_unique",
            ),
        ]
        indexes = [models.Index(fields=["state", "changes_on"], name="operatorchange_state_day_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id}: {self.old_operator_name} → {self.new_operator_name} ({self.state})"

    @transition(field=state, source=State.REQUESTED, target=State.APPROVED)
    def approve(self) -> None:
        """The regulator approved it: holders are asked."""

    @transition(field=state, source=State.REQUESTED, target=State.REJECTED)
    def reject(self) -> None:
        """The regulator refused it; nothing changes."""

    @transition(field=state, source=State.APPROVED, target=State.COMPLETED)
    def complete(self) -> None:
        """The day came, the cards of holders who did not consent were refunded, the new operator took over."""
