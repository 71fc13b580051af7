"""Reads for the regulator's pages that the API does not need: the dashboard's figures, the
complaints queue's order, a merchant's recent actions and the names behind merchant ids.

Each figure is one SQL aggregate (or one ``GROUP BY``) over the regulator's jurisdiction (the whole
city for a city-wide regulator); Python only fills in the empty buckets and months. Money is integer
fen. Months are Beijing calendar months.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, TruncMonth

from complaints.models import Complaint
from complaints.selectors import complaint_list
from consumers.models import Card
from core import clock
from escrow.chain import heads_hash
from escrow.models import Account, ChainHead, JournalEntry, Posting
from merchants.models import Merchant
from regulator.models import RegulatorAction, RiskLevel
from regulator.selectors.jurisdiction import Jurisdiction
from regulator.services.risk import HOLDING

TREND_MONTHS = 6  # months of sales against releases on the dashboard
RISK_BUCKET = 10  # points per histogram bucket: 0-9, 10-19, ..., 90-100
FLAGGED_SHOWN = 10
RECENT_ACTIONS = 10

_ESCROW_LEFT = F("price") - F("released_total") - F("refunded_total")


def dashboard_escrow_total(*, jurisdiction: Jurisdiction) -> dict[str, int]:
    """``{escrow, cards}``: fen held in escrow by every card that holds escrow, and how many cards."""
    cards = jurisdiction.narrow(Card.objects.filter(state__in=HOLDING), path="merchant__")
    return cards.aggregate(escrow=Coalesce(Sum(_ESCROW_LEFT), 0), cards=Count("pk"))


def dashboard_risk_levels(*, jurisdiction: Jurisdiction) -> dict[str, int]:
    """``{"low": n, "medium": n, "high": n, "flagged": n, "total": n}`` over the merchants, one query."""
    return jurisdiction.merchants().aggregate(
        total=Count("pk"),
        flagged=Count("pk", filter=Q(flagged=True)),
        **{level: Count("pk", filter=Q(risk_level=level)) for level in RiskLevel.values},
    )


def dashboard_overdue_complaints(*, jurisdiction: Jurisdiction) -> int:
    """Complaints past their deadline and still unanswered (the ``(state, respond_by)`` index)."""
    overdue = Complaint.objects.filter(state=Complaint.State.OVERDUE)
    return jurisdiction.narrow(overdue, path="merchant__").count()


def dashboard_risk_histogram(*, jurisdiction: Jurisdiction) -> list[tuple[int, int, int]]:
    """``(low, high, merchants)`` per bucket of ``RISK_BUCKET`` points, 0-9 … 90-100 (100 joins the
    last bucket), from one aggregate of conditional counts."""
    bounds = [(low, low + RISK_BUCKET - 1) for low in range(0, 100, RISK_BUCKET)]
    bounds[-1] = (bounds[-1][0], 100)
    counts = jurisdiction.merchants().aggregate(
        **{f"b{low}": Count("pk", filter=Q(risk_score__gte=low, risk_score__lte=high)) for low, high in bounds}
    )
    return [(low, high, counts[f"b{low}"]) for low, high in bounds]


def dashboard_escrow_by_district(*, jurisdiction: Jurisdiction) -> dict[str, tuple[int, int]]:
    """``{district code: (escrow fen, cards)}`` of the cards holding escrow, one ``GROUP BY``."""
    rows = (
        jurisdiction.narrow(Card.objects.filter(state__in=HOLDING), path="merchant__")
        .values("merchant__district")
        .annotate(escrow=Sum(_ESCROW_LEFT), cards=Count("pk"))
        .values_list("merchant__district", "escrow", "cards")
    )
    return {district: (escrow or 0, cards) for district, escrow, cards in rows}


def _month_start(day: date, back: int) -> date:
    """The first day of the month ``back`` months before ``day``'s."""
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def _month_key(month: datetime | date) -> date:
    local = clock.local(month) if isinstance(month, datetime) else month
    return date(local.year, local.month, 1)


def dashboard_sales_and_releases(
    *, jurisdiction: Jurisdiction, months: int = TREND_MONTHS, merchant: Merchant | None = None
) -> list[dict[str, Any]]:
    """``[{month, sales, cards, released}]`` for the last ``months`` Beijing months (this one
    included), oldest first: card sales (``paid_at``, ``price``) and the releases credited to
    merchants' settlement accounts (``release`` entries' postings), each one ``GROUP BY`` month: of
    the jurisdiction's merchants, or with ``merchant`` (one of them), that merchant's alone (its
    cards, its settlement account: the audit report)."""
    today = clock.local_date()
    since = clock.local_midnight(_month_start(today, months - 1))
    paid = Card.objects.filter(paid_at__gte=since)
    postings = Posting.objects.filter(entry__code=JournalEntry.Code.RELEASE, entry__created_at__gte=since)
    if merchant is None:
        paid = jurisdiction.narrow(paid, path="merchant__")
        postings = jurisdiction.narrow(
            postings.filter(account__kind=Account.Kind.MERCHANT_SETTLEMENT), path="account__merchant__"
        )
    elif not jurisdiction.covers(merchant):
        paid, postings = paid.none(), postings.none()
    else:
        paid = paid.filter(merchant=merchant)
        postings = postings.filter(account_id=merchant.settlement_account_id)
    sales = (
        paid.annotate(month=TruncMonth("paid_at", tzinfo=clock.BEIJING))
        .values("month")
        .annotate(cards=Count("pk"), sales=Sum("price"))
        .values_list("month", "cards", "sales")
    )
    # A release credits the settlement account: its posting there is negative.
    releases = (
        postings.annotate(month=TruncMonth("entry__created_at", tzinfo=clock.BEIJING))
        .values("month")
        .annotate(released=Sum(-F("amount")))
        .values_list("month", "released")
    )
    sold = {_month_key(month): (cards, total or 0) for month, cards, total in sales}
    released = {_month_key(month): total or 0 for month, total in releases}
    rows = []
    for back in range(months - 1, -1, -1):
        month = _month_start(today, back)
        cards, total = sold.get(month, (0, 0))
        rows.append({"month": month, "cards": cards, "sales": total, "released": released.get(month, 0)})
    return rows


def dashboard_flagged_merchants(*, jurisdiction: Jurisdiction, limit: int = FLAGGED_SHOWN) -> list[Merchant]:
    """The flagged merchants, riskiest first."""
    return list(
        jurisdiction.merchants()
        .filter(flagged=True)
        .order_by("-risk_score", "name", "pk")
        .only("pk", "name", "district", "category", "risk_score", "risk_level", "sales_frozen", "releases_frozen")[
            :limit
        ]
    )


def merchant_actions_recent(*, merchant: Merchant, limit: int = RECENT_ACTIONS) -> list[RegulatorAction]:
    """The merchant's newest regulator actions, with their refund orders' progress rows."""
    return list(
        RegulatorAction.objects.select_related("mass_refund", "actor")
        .filter(merchant=merchant)
        .order_by("-created_at", "-pk")[:limit]
    )


# Open work first: overdue, then open (soonest deadline first), then answered, then closed.
_QUEUE_RANK = Case(
    When(state=Complaint.State.OVERDUE, then=Value(0)),
    When(state=Complaint.State.OPEN, then=Value(1)),
    When(state=Complaint.State.RESPONDED, then=Value(2)),
    default=Value(3),
    output_field=IntegerField(),
)


def complaint_queue(*, user, **filters: Any) -> QuerySet[Complaint]:
    """``complaint_list`` (same visibility and filters) in the regulator's working order."""
    return (
        complaint_list(user=user, **filters).annotate(queue_rank=_QUEUE_RANK).order_by("queue_rank", "respond_by", "pk")
    )


def merchant_names(ids: list[Any]) -> dict[str, str]:
    """``{str(id): name}`` for the merchants among ``ids``, one query."""
    clean = set()
    for value in ids:
        try:
            clean.add(uuid.UUID(str(value)))
        except ValueError:
            continue
    return {str(pk): name for pk, name in Merchant.objects.filter(pk__in=clean).values_list("pk", "name")}


def merchant_id_by_reference(*, jurisdiction: Jurisdiction, value: str) -> Any | None:
    """The id of the jurisdiction's merchant that ``value`` names, by id or by licence number; None
    if none does."""
    value = (value or "").strip()
    if not value:
        return None
    merchants = jurisdiction.merchants()
    try:
        merchant_id = uuid.UUID(value)
    except ValueError:
        return merchants.filter(license_number=value.upper()).values_list("pk", flat=True).first()
    return merchants.filter(pk=merchant_id).values_list("pk", flat=True).first()


def ledger_head() -> dict[str, Any]:
    """``{head_hash, chains}``: the ledger's head hash from the chain heads alone (cheap; it proves
    nothing until ``escrow.selectors.ledger_verify`` has recomputed the chains behind it)."""
    heads = list(ChainHead.objects.values_list("chain", "seq", "hash"))
    return {"head_hash": heads_hash(heads), "chains": len(heads)}
