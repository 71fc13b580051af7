"""Reads for merchants, products, filings (备案), relocations and changes of operator. The figures
of a merchant's that are its cards' (what they still hold in escrow, what was paid for them, how
many still hold escrow) are asked of the consumers app through ``merchants.handlers``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.db.models import Case, Q, QuerySet, Sum, Value, When

from core import clock
from core.errors import NotFound
from core.rules import rules_active
from escrow.models import Account
from merchants.handlers import card_figures, escrow_outstanding
from merchants.models import Filing, FilingDocument, Merchant, OperatorChange, Product, Relocation, Settlement
from merchants.oversight import oversight_of


def merchant_of_user(*, user) -> Merchant:
    """The user's merchant profile (already loaded with the user by token authentication)."""
    try:
        return user.merchant
    except Merchant.DoesNotExist as exc:
        raise NotFound() from exc


def products_on_sale(*, merchant_id: str | None = None) -> QuerySet[Product]:
    """Products a consumer can buy now, with their merchant (for its risk warning)."""
    products = (
        Product.objects.select_related("merchant")
        .filter(on_sale=True, merchant__status=Merchant.Status.ACTIVE)
        .order_by("-created_at", "id")
    )
    if merchant_id is not None:
        products = products.filter(merchant_id=merchant_id)
    return products


def merchant_products(*, merchant: Merchant) -> QuerySet[Product]:
    """Every product the merchant has created, on sale or not, newest first (its own shop page)."""
    return Product.objects.filter(merchant=merchant).order_by("-created_at", "id")


def merchant_balance(*, merchant: Merchant) -> dict:
    """``escrow_outstanding`` (its customers' money still in escrow), ``available`` (released, not
    yet paid out) and ``paid_out_total``, each one aggregate over indexed columns."""
    escrow = escrow_outstanding(merchant_id=merchant.pk)
    available = Account.objects.values_list("balance", flat=True).get(pk=merchant.settlement_account_id)
    paid = (
        Settlement.objects.filter(merchant=merchant, payout_state=Settlement.PayoutState.PAID).aggregate(
            total=Sum("payout_amount")
        )["total"]
        or 0
    )
    return {"escrow_outstanding": escrow, "available": available, "paid_out_total": paid, "currency": "cny"}


def merchant_settlements(*, merchant: Merchant) -> QuerySet[Settlement]:
    return Settlement.objects.filter(merchant=merchant).order_by("-date")


def merchant_settlement_get(*, merchant: Merchant, settlement_id: str) -> Settlement:
    try:
        return Settlement.objects.select_related("merchant").get(pk=settlement_id, merchant=merchant)
    except (Settlement.DoesNotExist, ValueError) as exc:
        raise NotFound() from exc


FilingStatus = Literal["filed", "not_filed", "not_required"]
# What consumers and the public record are told of a merchant's filing (the values of FilingStatus).
FILING_STATUSES: tuple[FilingStatus, ...] = ("filed", "not_filed", "not_required")


@dataclass(frozen=True)
class FilingMeasures:
    """What the triggers are measured on, for one merchant: ``balance`` (fen of prepaid money still
    held for it), ``collected`` (fen paid for its cards, ever) and ``unredeemed`` (its cards not
    fully redeemed)."""

    balance: int
    collected: int
    unredeemed: int


def filing_measures(*, merchant: Merchant, with_cards: bool = True) -> FilingMeasures:
    """The merchant's figures now. ``with_cards=False`` skips the card totals only transport-style
    triggers read (they are then 0)."""
    balance = merchant_balance(merchant=merchant)["escrow_outstanding"]
    if not with_cards:
        return FilingMeasures(balance=balance, collected=0, unredeemed=0)
    collected, unredeemed = card_figures(merchant_id=merchant.pk)
    return FilingMeasures(balance=balance, collected=collected, unredeemed=unredeemed)


def merchants_to_check() -> QuerySet[Merchant]:
    """Merchants still trading (not closed) that have neither an open nor an accepted filing."""
    settled = Filing.objects.filter(state__in=[*Filing.OPEN, Filing.State.ACCEPTED]).values("merchant_id")
    return Merchant.objects.exclude(status=Merchant.Status.CLOSED).exclude(pk__in=settled).order_by("pk")


def merchant_filing_current(*, merchant: Merchant) -> Filing | None:
    """The merchant's open filing, else its accepted one, else None."""
    filings = Filing.objects.filter(merchant=merchant, state__in=[*Filing.OPEN, Filing.State.ACCEPTED])
    return filings.order_by("-created_at").first()


def merchant_filing_status(*, merchant: Merchant) -> FilingStatus:
    """``filed`` (a filing accepted), ``not_filed`` (one required and not yet accepted) or
    ``not_required``: what consumers are shown as 已备案 / 未备案 (nothing for not_required)."""
    states = set(
        Filing.objects.filter(merchant=merchant, state__in=[*Filing.OPEN, Filing.State.ACCEPTED]).values_list(
            "state", flat=True
        )
    )
    if Filing.State.ACCEPTED in states:
        return "filed"
    return "not_filed" if states else "not_required"


def _overdue_q(at: datetime) -> Q:
    return Q(state__in=Filing.AWAITING_MERCHANT, due_by__lte=at)


def filings_for_regulator(*, state: str | None = None, overdue: bool | None = None) -> QuerySet[Filing]:
    """Every filing, the earliest deadline first; ``state`` and ``overdue`` narrow it."""
    filings = Filing.objects.select_related("merchant").prefetch_related("documents").order_by("due_by", "pk")
    if state:
        filings = filings.filter(state=state)
    if overdue is not None:
        filings = filings.filter(_overdue_q(clock.now())) if overdue else filings.exclude(_overdue_q(clock.now()))
    return filings


def filing_get(*, filing_id: Any) -> Filing:
    """One filing with its merchant (the regulator's detail)."""
    try:
        return Filing.objects.select_related("merchant", "decided_by").get(pk=filing_id)
    except (Filing.DoesNotExist, ValueError, ValidationError) as exc:
        raise NotFound() from exc


def filing_documents(*, filing: Filing) -> QuerySet[FilingDocument]:
    return FilingDocument.objects.filter(filing=filing).order_by("-submission", "uploaded_at", "pk")


def filing_document_get(*, user, document_id: Any) -> FilingDocument:
    """A document its merchant or a regulator overseeing it may open; anyone else is told it does not exist."""
    try:
        document = FilingDocument.objects.select_related("filing__merchant").get(pk=document_id)
    except (FilingDocument.DoesNotExist, ValueError, ValidationError) as exc:
        raise NotFound() from exc
    role = getattr(user, "role", None)
    if role == "regulator" and oversight_of(user).covers(document.filing.merchant):
        return document
    if role == "merchant" and document.filing.merchant.user_id == user.pk:
        return document
    raise NotFound()


def filings_overdue_by_merchant(*, at: datetime, merchant_ids: list | None = None) -> dict[Any, tuple[int, int]]:
    """Per merchant with an overdue filing: ``(1, days past its deadline)`` (one open filing at most)."""
    scope = Filing.objects.filter(_overdue_q(at))
    if merchant_ids is not None:
        scope = scope.filter(merchant_id__in=merchant_ids)
    return {
        merchant_id: (1, max(0, (clock.local_date(at) - due_on).days))
        for merchant_id, due_on in scope.values_list("merchant_id", "due_on")
    }


def filing_basis(*, filing: Filing | None, language: str | None) -> str:
    """The provision of the rule that required the filing, in ``language``; empty when the profile in
    force is not the one that required it, or no longer has that rule."""
    if filing is None:
        return ""
    profile = rules_active()
    if profile.key != filing.profile:
        return ""
    try:
        return profile.rule(filing.trigger, category=filing.merchant.category).basis(language)
    except KeyError:
        return ""


# --- relocations and changes of operator ----------------------------------------------------------


def relocation_latest(*, merchant: Merchant) -> Relocation | None:
    """The merchant's newest relocation notice that was not withdrawn (pending or moved), or None."""
    return (
        Relocation.objects.filter(merchant=merchant, state__in=[Relocation.State.NOTIFIED, Relocation.State.MOVED])
        .order_by("-notified_at", "pk")
        .first()
    )


def relocation_pending(*, merchant: Merchant) -> Relocation | None:
    """The merchant's notice of a move still to come (at most one), or None."""
    return Relocation.objects.filter(merchant=merchant, state=Relocation.State.NOTIFIED).first()


def relocation_refund_open(*, merchant: Merchant, day: date | None = None) -> bool:
    """Whether a relocation notice lets the merchant's holders take a ``merchant_default`` refund on
    ``day`` (Beijing, default today): from the notice to its ``refund_until``. Reads the merchant row
    only (``Merchant.relocation_refund_until``)."""
    until = merchant.relocation_refund_until
    return until is not None and (day or clock.local_date()) <= until


def operator_change_open(*, merchant: Merchant) -> OperatorChange | None:
    """The merchant's change of operator awaiting the regulator or its day (at most one), or None."""
    return OperatorChange.objects.filter(merchant=merchant, state__in=OperatorChange.OPEN).first()


def operator_change_latest(*, merchant: Merchant) -> OperatorChange | None:
    """The merchant's newest change of operator, whatever its state (its own page), or None."""
    return OperatorChange.objects.filter(merchant=merchant).order_by("-requested_at", "pk").first()


def operator_change_in_effect(*, merchant: Merchant, day: date | None = None) -> OperatorChange | None:
    """The approved change of operator whose day has come by ``day`` (Beijing, default today) and
    that is not completed yet: its non-consenting cards are being refunded. None when the merchant
    row says no change is due (``Merchant.operator_changes_on``), without a query."""
    changes_on = merchant.operator_changes_on
    if changes_on is None or (day or clock.local_date()) < changes_on:
        return None
    return OperatorChange.objects.filter(merchant=merchant, state=OperatorChange.State.APPROVED).first()


def operator_changes_for_regulator(
    *, merchants: QuerySet[Merchant], state: str | None = None
) -> QuerySet[OperatorChange]:
    """Changes of operator of ``merchants`` (the regulator's jurisdiction), those awaiting a decision
    first, then by their day."""
    changes = OperatorChange.objects.select_related("merchant").filter(merchant__in=merchants)
    if state:
        changes = changes.filter(state=state)
    waiting = Case(
        When(state=OperatorChange.State.REQUESTED, then=Value(0)),
        When(state=OperatorChange.State.APPROVED, then=Value(1)),
        default=Value(2),
    )
    return changes.order_by(waiting, "changes_on", "pk")


def operator_change_get(*, change_id: Any, merchants: QuerySet[Merchant] | None = None) -> OperatorChange:
    """One change of operator with its merchant; one of a merchant outside ``merchants`` is not found."""
    scope = OperatorChange.objects.select_related("merchant", "decided_by", "requested_by")
    if merchants is not None:
        scope = scope.filter(merchant__in=merchants)
    try:
        return scope.get(pk=change_id)
    except (OperatorChange.DoesNotExist, ValueError, ValidationError) as exc:
        raise NotFound() from exc


@dataclass(frozen=True)
class Particulars:
    """Who a merchant was and where, on one day: its operator's name and licence, and its premises."""

    name: str
    license_number: str
    district: str
    address: str


def merchant_particulars_on(*, merchant: Merchant, day: date) -> Particulars:
    """The merchant's operator and premises as they were on ``day`` (Beijing): a settlement statement
    of a day before a change of operator names the operator of that day, and one before a move its
    old address. The earliest completed change (relocation) after ``day`` kept what it replaced."""
    name, license_number, district, address = (
        merchant.name,
        merchant.license_number,
        merchant.district,
        merchant.address,
    )
    change = (
        OperatorChange.objects.filter(merchant=merchant, state=OperatorChange.State.COMPLETED, changes_on__gt=day)
        .order_by("changes_on", "completed_at")
        .first()
    )
    if change is not None:
        name, license_number = change.old_operator_name, change.old_license_number
    move = (
        Relocation.objects.filter(merchant=merchant, state=Relocation.State.MOVED, moves_on__gt=day)
        .order_by("moves_on", "moved_at")
        .first()
    )
    if move is not None:
        district, address = move.old_district, move.old_address
    return Particulars(name=name, license_number=license_number, district=district, address=address)
