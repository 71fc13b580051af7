"""Consumers, their cards, the cards' payments and redemptions.

The card state machine
----------------------
::

    pending_payment ──pay──▶ cooling_off ──activate──▶ active ──exhaust──▶ exhausted
          │                     │    ╲                  │  ▲
        cancel                refund   freeze        freeze│unfreeze
          ▼                     ▼        ╲              ▼  │
      cancelled              refunded ◀──refund──── frozen

- ``pay``: the payment reached the custody bank; the purchase entry put ``price`` in the card's
  escrow and ``cooling_off_ends_at`` was fixed (00:00 Beijing time, purchase day + 8).
- ``activate``: the cooling-off period is over, by the clock or by the first confirmed service.
- ``exhaust`` / ``refund``: the escrow is empty (``released_total + refunded_total == price``);
  both are final. ``consumers.services.card_change`` is the one place totals change and these two
  follow from them.
- ``freeze`` / ``unfreeze``: the regulator froze the merchant's releases.

Every rule also reads the clock itself, so nothing depends on when the periodic job that activates
cards runs. Money lives in the ledger: ``escrow_balance`` is the card's escrow account balance, and
``price == escrow_balance + released_total + refunded_total`` for every paid card.

A ``Dispute`` (a merchant contesting a service its consumer rejected; its rules are
``consumers.disputes``') holds the card while it is open: no refund, no transfer.
A card's life after the purchase
--------------------------------
- ``TopUp``: more money paid into a stored-value card, a purchase of its own: its own payment at the
  gateway, its own cooling-off period (returned in full while no service was received since it was
  paid), its own escrow posting into the card's escrow account and its own contract annex. Once paid
  it counts in the card's ``price`` (money paid), ``face_value`` and ``balance``, so the invariant
  above holds with top-ups counted in the money paid::

      pending_payment ──pay──▶ cooling_off ──settle──▶ settled
            │                      │
          cancel                 refund
            ▼                      ▼
        cancelled               refunded

- ``CardTransfer``: the holder offers the card to another consumer by phone number; the card
  changes hands when that consumer accepts (no money moves: the escrow account is the card's)::

      offered ──accept──▶ accepted
         ├────decline──▶ declined
         ├────cancel───▶ cancelled   (by the holder)
         └────expire───▶ expired     (past expires_at, by the clock)
"""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from django_fsm import FSMField, FSMModelMixin, transition

from core import clock
from escrow.models import Account
from merchants.models import Merchant, OperatorChange, Product


def phone_normalize(phone: str) -> str:
    """A phone number as transfers compare them: without spaces or dashes and without China's
    country code (``+86 138-0000-1234`` → ``13800001234``); another country's keeps its ``+``."""
    digits = "".join(ch for ch in phone if ch not in " -")
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix) and len(digits) > len(prefix):
            return digits[len(prefix) :]
    return digits


class Consumer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consumer")
    display_name = models.CharField(max_length=100)
    phone = models.CharField(max_length=20)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.display_name


# The counter code: what a holder shows (or reads out) at the counter instead of the card's id.
# Digits and capitals without 0/O, 1/I/L (misread on a screen or when read out): 31 symbols.
COUNTER_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
COUNTER_CODE_LENGTH = 8


def counter_code_new() -> str:
    """A fresh random counter code (``Card.counter_code``'s default, drawn with ``secrets``).

    Eight of 31 symbols: 31**8 ≈ 8.5 × 10**11 codes (39.6 bits). Codes are random rather than
    derived from the card's id, which is just as random and would only add a step. The column is
    unique, so a repeated code can never reach two cards: the purchase that drew it fails. With ``n``
    cards already sold a new card draws a taken code with probability n / 31**8: one draw in 8.5
    million at 100,000 cards, one in 850,000 at a million. The purchase
    (``consumers.services.card_purchase``) draws again when the code it drew is taken, so a
    purchase fails only if three draws in a row are taken. A merchant finds only its own cards by code
    (``consumers.selectors.card_for_counter``), so guessing codes reveals nothing of other shops.
    """
    return "".join(secrets.choice(COUNTER_CODE_ALPHABET) for _ in range(COUNTER_CODE_LENGTH))


def counter_code_display(code: str) -> str:
    """The code as people read it, in two groups of four: ``K7QX3MPA`` → ``K7QX-3MPA``."""
    return f"{code[:4]}-{code[4:]}"


def _cooling_off_over_or_served(card: "Card") -> bool:
    return card.first_service_at is not None or (
        card.cooling_off_ends_at is not None and clock.now() >= card.cooling_off_ends_at
    )


def _escrow_empty(card: "Card") -> bool:
    return card.escrow_left == 0


class Card(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("pending payment")
        COOLING_OFF = "cooling_off", _("cooling-off")
        ACTIVE = "active", _("active")
        EXHAUSTED = "exhausted", _("exhausted")
        REFUNDED = "refunded", _("refunded")
        CANCELLED = "cancelled", _("cancelled")
        FROZEN = "frozen", _("frozen")

    # The states of a paid card whose escrow may still hold money: what a refund may empty. And
    # the states a service may be given in.
    HOLDING = (State.COOLING_OFF, State.ACTIVE, State.FROZEN)
    REDEEMABLE = (State.COOLING_OFF, State.ACTIVE)
    # What the education limit counts as collected (consumers.limits): the cards holding money, and
    # one bought and waiting for its payment, which paying must not take over the limit.
    LIMIT_COUNTED = (State.PENDING_PAYMENT, *HOLDING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="cards")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="cards")
    consumer = models.ForeignKey(Consumer, on_delete=models.PROTECT, related_name="cards")
    kind = models.CharField(max_length=16, choices=Product.Kind.choices)
    state = FSMField(default=State.PENDING_PAYMENT, choices=State.choices, protected=True)
    escrow_account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="card")
    # The contract's terms, copied from the product at purchase.
    price = models.BigIntegerField()
    face_value = models.BigIntegerField(null=True, blank=True)
    unit_price = models.BigIntegerField(null=True, blank=True)
    sessions = models.PositiveIntegerField(null=True, blank=True)
    days = models.PositiveIntegerField(null=True, blank=True)
    refund_fee_bps = models.PositiveIntegerField(default=0)
    # Where the money went; the rest is in escrow.
    released_total = models.BigIntegerField(default=0)
    refunded_total = models.BigIntegerField(default=0)
    # What the consumer has left.
    balance = models.BigIntegerField(null=True, blank=True)  # stored_value: face value left
    sessions_remaining = models.PositiveIntegerField(null=True, blank=True)
    valid_from = models.DateTimeField(null=True, blank=True)  # period_pass
    valid_until = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    cooling_off_ends_at = models.DateTimeField(null=True, blank=True)
    first_service_at = models.DateTimeField(null=True, blank=True)
    purchase_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # The rules profile's version (core.rules.profile_version()) in force at the purchase: the one
    # its limits were checked under; "" for cards older than the record.
    rules_version = models.CharField(max_length=40, blank=True, default="")
    # Shown on the card's page (with a QR code of it) for the merchant to find the card at the counter.
    counter_code = models.CharField(
        max_length=COUNTER_CODE_LENGTH, unique=True, default=counter_code_new, editable=False
    )
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["merchant", "state"], name="card_merchant_state_idx"),
            models.Index(fields=["consumer", "created_at"], name="card_consumer_created_idx"),
            models.Index(fields=["state", "cooling_off_ends_at"], name="card_state_cooling_off_idx"),
            models.Index(fields=["kind", "state"], name="card_kind_state_idx"),
            models.Index(fields=["paid_at"], name="card_paid_at_idx"),  # the regulator's sales windows
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(released_total__gte=0, refunded_total__gte=0), name="card_totals_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(released_total__lte=F("price") - F("refunded_total")), name="card_totals_within_price"
            ),
            models.CheckConstraint(
                condition=Q(balance__isnull=True) | Q(balance__gte=0), name="card_balance_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"card {self.pk}"

    @property
    def counter_code_display(self) -> str:
        return counter_code_display(self.counter_code)

    @property
    def escrow_left(self) -> int:
        """Fen still in escrow, from the card's own totals (equal to its escrow account's balance)."""
        return self.price - self.released_total - self.refunded_total

    @property
    def in_cooling_off_window(self) -> bool:
        return self.cooling_off_ends_at is not None and clock.now() < self.cooling_off_ends_at

    @transition(field=state, source=State.PENDING_PAYMENT, target=State.COOLING_OFF)
    def pay(self) -> None:
        """The payment reached the custody bank."""

    @transition(field=state, source=State.PENDING_PAYMENT, target=State.CANCELLED)
    def cancel(self) -> None:
        """The payment failed or was abandoned."""

    @transition(field=state, source=State.COOLING_OFF, target=State.ACTIVE, conditions=[_cooling_off_over_or_served])
    def activate(self) -> None:
        """The cooling-off period is over: by the clock, or because a service was received."""

    @transition(field=state, source=State.ACTIVE, target=State.EXHAUSTED, conditions=[_escrow_empty])
    def exhaust(self) -> None:
        """Every fen was released by services."""

    @transition(
        field=state,
        source=HOLDING,
        target=State.REFUNDED,
        conditions=[_escrow_empty],
    )
    def refund(self) -> None:
        """A refund emptied the escrow."""

    @transition(field=state, source=[State.COOLING_OFF, State.ACTIVE], target=State.FROZEN)
    def freeze(self) -> None:
        """The regulator froze the merchant's releases."""

    @transition(field=state, source=State.FROZEN, target=State.ACTIVE)
    def unfreeze(self) -> None:
        """The regulator lifted the freeze."""


class Payment(FSMModelMixin, models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.OneToOneField(Card, on_delete=models.PROTECT, related_name="payment")
    gateway = models.CharField(max_length=16)
    amount = models.BigIntegerField()
    status = FSMField(default=Status.PENDING, choices=Status.choices, protected=True)
    external_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    client_secret = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)

    @transition(field=status, source=Status.PENDING, target=Status.SUCCEEDED)
    def succeed(self) -> None:
        """The gateway confirmed the money arrived."""

    @transition(field=status, source=Status.PENDING, target=Status.FAILED)
    def fail(self) -> None:
        """The gateway refused the payment."""


def _not_expired(redemption: "Redemption") -> bool:
    return clock.now() < redemption.expires_at


class Redemption(FSMModelMixin, models.Model):
    class State(models.TextChoices):
        AWAITING_CONFIRMATION = "awaiting_confirmation", _("awaiting confirmation")
        CONFIRMED = "confirmed", _("confirmed")
        REJECTED = "rejected", _("rejected")
        EXPIRED = "expired", _("expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="redemptions")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="redemptions")
    amount = models.BigIntegerField(null=True, blank=True)  # stored_value: face value used
    sessions = models.PositiveSmallIntegerField(null=True, blank=True)  # session_pack: 1
    released = models.BigIntegerField(default=0)  # fen released by the confirmation
    state = FSMField(default=State.AWAITING_CONFIRMATION, choices=State.choices, protected=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["state", "expires_at"], name="redemption_state_expires_idx"),
            models.Index(fields=["card", "state"], name="redemption_card_state_idx"),
            models.Index(fields=["merchant", "created_at"], name="redemption_merchant_idx"),
        ]

    @transition(field=state, source=State.AWAITING_CONFIRMATION, target=State.CONFIRMED, conditions=[_not_expired])
    def confirm(self) -> None:
        """The consumer confirmed the service."""

    @transition(field=state, source=State.AWAITING_CONFIRMATION, target=State.REJECTED)
    def reject(self) -> None:
        """The consumer disputes the service."""

    @transition(
        field=state,
        source=State.AWAITING_CONFIRMATION,
        target=State.EXPIRED,
        conditions=[lambda r: not _not_expired(r)],
    )
    def expire(self) -> None:
        """Nobody confirmed within the time allowed."""


class TopUp(FSMModelMixin, models.Model):
    """Money paid into a stored-value card after its purchase (see the module docstring).

    ``amount`` is the money paid; ``face_value`` the face value it adds to the card's balance, at
    the card's own rate (its plan's price to face value, rounded down to the fen). The payment is
    the top-up's own (``gateway``, ``external_id``, ``client_secret``): its id is the payment's id
    in the API. ``consumer`` is who paid (the holder then; a card is not transferred while a top-up
    waits for payment or is in its cooling-off period)."""

    class State(models.TextChoices):
        PENDING_PAYMENT = "pending_payment", _("pending payment")
        COOLING_OFF = "cooling_off", _("cooling-off")
        SETTLED = "settled", _("settled")
        REFUNDED = "refunded", _("refunded")
        CANCELLED = "cancelled", _("cancelled")

    # A top-up counted against the card's cap and the education limit before it is paid, and one
    # that stops the card from being transferred.
    OPEN = (State.PENDING_PAYMENT, State.COOLING_OFF)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="top_ups")
    consumer = models.ForeignKey(Consumer, on_delete=models.PROTECT, related_name="top_ups")
    amount = models.BigIntegerField()
    face_value = models.BigIntegerField()
    state = FSMField(default=State.PENDING_PAYMENT, choices=State.choices, protected=True)
    gateway = models.CharField(max_length=16)
    external_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    client_secret = models.CharField(max_length=255, blank=True, default="")
    purchase_key = models.CharField(max_length=255, null=True, blank=True, unique=True)
    rules_version = models.CharField(max_length=40, blank=True, default="")
    paid_at = models.DateTimeField(null=True, blank=True)
    cooling_off_ends_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)  # paid, cancelled, settled or refunded
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["card", "state"], name="topup_card_state_idx"),
            models.Index(fields=["state", "cooling_off_ends_at"], name="topup_state_cooling_off_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0, face_value__gt=0), name="topup_amounts_positive"),
        ]

    def __str__(self) -> str:
        return f"top-up {self.pk}"

    @property
    def in_cooling_off_window(self) -> bool:
        return self.cooling_off_ends_at is not None and clock.now() < self.cooling_off_ends_at

    @property
    def payment_status(self) -> str:
        """Its payment's status, as a card's payment has one: pending, succeeded or failed."""
        if self.state == self.State.PENDING_PAYMENT:
            return "pending"
        return "failed" if self.state == self.State.CANCELLED else "succeeded"

    @transition(field=state, source=State.PENDING_PAYMENT, target=State.COOLING_OFF)
    def pay(self) -> None:
        """The payment reached the custody bank: the money is in the card's escrow."""

    @transition(field=state, source=State.PENDING_PAYMENT, target=State.CANCELLED)
    def cancel(self) -> None:
        """The payment failed, or the card could take no more money when it arrived."""

    @transition(field=state, source=State.COOLING_OFF, target=State.SETTLED)
    def settle(self) -> None:
        """Its cooling-off period is over: by the clock, or a service was received since it was paid."""

    @transition(field=state, source=State.COOLING_OFF, target=State.REFUNDED)
    def refund(self) -> None:
        """Returned in full within its cooling-off period."""


def _transfer_open(transfer: "CardTransfer") -> bool:
    return clock.now() < transfer.expires_at


class CardTransfer(FSMModelMixin, models.Model):
    """A holder's offer of a card to the consumer with ``to_phone`` (``phone_normalize``d); the
    card is theirs once they accept. One open offer a card at most. Nothing here moves money."""

    class State(models.TextChoices):
        OFFERED = "offered", _("offered")
        ACCEPTED = "accepted", _("accepted")
        DECLINED = "declined", _("declined")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="transfers")
    from_consumer = models.ForeignKey(Consumer, on_delete=models.PROTECT, related_name="transfers_given")
    to_phone = models.CharField(max_length=20)
    to_consumer = models.ForeignKey(
        Consumer, on_delete=models.PROTECT, null=True, blank=True, related_name="transfers_received"
    )
    state = FSMField(default=State.OFFERED, choices=State.choices, protected=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["to_phone", "state"], name="transfer_to_phone_state_idx"),
            models.Index(fields=["state", "expires_at"], name="transfer_state_expires_idx"),
            models.Index(fields=["card", "state", "decided_at"], name="transfer_card_state_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["card"], condition=Q(state="offered"), name="transfer_one_open_offer"),
        ]

    def __str__(self) -> str:
        return f"transfer {self.pk}"

    @transition(field=state, source=State.OFFERED, target=State.ACCEPTED, conditions=[_transfer_open])
    def accept(self) -> None:
        """The consumer with the phone took the card: it is theirs."""

    @transition(field=state, source=State.OFFERED, target=State.DECLINED)
    def decline(self) -> None:
        """The consumer with the phone said no."""

    @transition(field=state, source=State.OFFERED, target=State.CANCELLED)
    def cancel(self) -> None:
        """The holder withdrew the offer."""

    @transition(field=state, source=State.OFFERED, target=State.EXPIRED, conditions=[lambda t: not _transfer_open(t)])
    def expire(self) -> None:
        """Nobody accepted before ``expires_at``."""


class OperatorConsent(models.Model):
    """A holder's answer for one card to an approved change of its merchant's operator
    (``consumers.services.operator_consent_give``): ``consent`` true to continue with the new
    operator, false to be refunded on the change day. Given again before that day, the answer is
    replaced; a card without an answer saying true on the day is refunded (``merchant_default``). The
    answer belongs to the card, so it follows the card to whoever holds it."""

    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="operator_consents")
    operator_change = models.ForeignKey(OperatorChange, on_delete=models.PROTECT, related_name="consents")
    consent = models.BooleanField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")  # who answered
    decided_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["operator_change", "card"], name="operatorconsent_once_per_card")
        ]


# --- disputes (consumers.disputes) -------------------------------------------------------------


def _past_decide_by(dispute: "Dispute") -> bool:
    return clock.now() >= dispute.decide_by


class Dispute(FSMModelMixin, models.Model):
    """A merchant contests a service its consumer rejected; the regulator decides.

    ::

        open ──uphold──▶ upheld      (the redemption's share is released, once)
          │ ╲
          │  dismiss──▶ dismissed    (the regulator's decision; or the platform refunded the card)
          ╲
           expire───▶ dismissed      (not decided by ``decide_by``)

    One dispute per redemption. ``released`` is what upholding released (never more than the
    card's escrow then); ``ended_by`` says who ended it. While a dispute is open (and not past
    ``decide_by``) its card can be neither refunded nor transferred.
    """

    class State(models.TextChoices):
        OPEN = "open", _("open")
        UPHELD = "upheld", _("upheld")
        DISMISSED = "dismissed", _("dismissed")

    class EndedBy(models.TextChoices):
        DECISION = "decision", _("the regulator's decision")
        TIMEOUT = "timeout", _("not decided in time")
        REFUND = "refund", _("the card was refunded by the platform")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    redemption = models.OneToOneField(Redemption, on_delete=models.PROTECT, related_name="dispute")
    card = models.ForeignKey(Card, on_delete=models.PROTECT, related_name="disputes")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="disputes")
    consumer = models.ForeignKey(Consumer, on_delete=models.PROTECT, related_name="disputes")  # the holder then
    reason = models.TextField()
    state = FSMField(default=State.OPEN, choices=State.choices, protected=True)
    decide_by = models.DateTimeField()
    released = models.BigIntegerField(default=0)  # fen released to the merchant by upholding it
    note = models.TextField(blank=True, default="")  # the regulator's, with its decision
    ended_by = models.CharField(max_length=16, choices=EndedBy.choices, blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["state", "decide_by"], name="dispute_state_decide_by_idx"),
            models.Index(fields=["card", "state"], name="dispute_card_state_idx"),
            models.Index(fields=["merchant", "created_at"], name="dispute_merchant_idx"),
            models.Index(fields=["consumer", "created_at"], name="dispute_consumer_idx"),
        ]
        constraints = [models.CheckConstraint(condition=Q(released__gte=0), name="dispute_released_non_negative")]

    def __str__(self) -> str:
        return f"dispute {self.pk}"

    @property
    def is_open(self) -> bool:
        """Open by the clock: an open dispute past ``decide_by`` is dismissed, whether or not the job
        that writes so has run."""
        return self.state == self.State.OPEN and clock.now() < self.decide_by

    @transition(field=state, source=State.OPEN, target=State.UPHELD, conditions=[lambda d: not _past_decide_by(d)])
    def uphold(self) -> None:
        """The regulator found the service was given: its share goes to the merchant."""

    @transition(field=state, source=State.OPEN, target=State.DISMISSED)
    def dismiss(self) -> None:
        """The regulator found it was not, or the platform refunded the card: nothing is released."""

    @transition(field=state, source=State.OPEN, target=State.DISMISSED, conditions=[_past_decide_by])
    def expire(self) -> None:
        """Nobody decided it in time."""


def dispute_evidence_path(evidence: "DisputeEvidence", filename: str) -> str:
    """``disputes/<dispute id>/<uuid><suffix>``: the sender's file name is kept in ``name``, never in the path."""
    from core.uploads import SUFFIXES

    return f"disputes/{evidence.dispute_id}/{uuid.uuid4().hex}{SUFFIXES.get(evidence.content_type, '')}"


class DisputeEvidence(models.Model):
    """One piece of a party's evidence: a text, or a file (PDF, JPEG or PNG by its bytes; its
    SHA-256 kept), shown to both parties and the regulator."""

    class Party(models.TextChoices):
        MERCHANT = "merchant", _("merchant")
        CONSUMER = "consumer", _("consumer")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dispute = models.ForeignKey(Dispute, on_delete=models.PROTECT, related_name="evidence")
    party = models.CharField(max_length=16, choices=Party.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(blank=True, default="")
    file = models.FileField(upload_to=dispute_evidence_path, max_length=200, blank=True)
    name = models.CharField(max_length=200, blank=True, default="")  # the file's name as sent
    size = models.PositiveIntegerField(default=0)
    content_type = models.CharField(max_length=100, blank=True, default="")
    sha256 = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["dispute", "created_at"], name="disputeevidence_dispute_idx")]
        constraints = [
            models.CheckConstraint(
                condition=(Q(file="") & ~Q(text="")) | (~Q(file="") & ~Q(sha256="")),
                name="disputeevidence_text_or_file",
            )
        ]

    @property
    def is_file(self) -> bool:
        return bool(self.file)
