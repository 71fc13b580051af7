"""Reads of complaints: who sees which, the lists' filters, and the regulator's statistics.

Visibility: a consumer sees the complaints they filed, a merchant those against it, a regulator
those against the merchants of its jurisdiction (``merchants.oversight``); anything else is "not
found". Statistics are ``GROUP BY`` queries; Python only shapes the
grouped rows. Months are Beijing calendar months (``created_at`` is stored in UTC).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMonth
from django.utils.translation import get_language

from complaints.models import Complaint
from core import clock
from core.errors import NotFound
from merchants.oversight import oversight_of
from merchants.registry import district_name

STATS_MONTHS = 12
TOP_PAIRS = 10


def complaints_visible_to(*, user) -> QuerySet[Complaint]:
    """A consumer's own complaints, a merchant's complaints against it, a regulator's those against
    the merchants of its jurisdiction."""
    complaints = Complaint.objects.select_related("merchant").order_by("-created_at", "pk")
    if user.role == "regulator":
        return oversight_of(user).narrow(complaints, path="merchant__")
    if user.role == "merchant":
        return complaints.filter(merchant__user=user)
    return complaints.filter(consumer__user=user)


def complaint_get(*, user, complaint_id: Any) -> Complaint:
    try:
        return complaints_visible_to(user=user).get(pk=complaint_id)
    except (Complaint.DoesNotExist, ValueError, DjangoValidationError) as exc:  # malformed ids are absent too
        raise NotFound() from exc


def complaint_list(
    *,
    user,
    state: str | None = None,
    merchant_id: Any | None = None,
    district: str | None = None,
    category: str | None = None,
    source: str | None = None,
    urgent: bool | None = None,
) -> QuerySet[Complaint]:
    """The complaints ``user`` may see, narrowed by each filter given (``district`` is a GB/T 2260 code)."""
    filters: dict[str, Any] = {
        "state": state,
        "merchant_id": merchant_id,
        "merchant__district": district,
        "category": category,
        "source": source,
        "urgent": urgent,
    }
    return complaints_visible_to(user=user).filter(**{k: v for k, v in filters.items() if v is not None})


def _month_start(day: date, shift: int = 0) -> date:
    """The first day of the month ``shift`` months from ``day``'s month."""
    index = day.year * 12 + day.month - 1 + shift
    return date(index // 12, index % 12 + 1, 1)


def _label(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def _between(first: date, end: date) -> Q:
    """``created_at`` from 00:00 Beijing on ``first`` up to (not including) 00:00 Beijing on ``end``."""
    return Q(created_at__gte=clock.local_midnight(first), created_at__lt=clock.local_midnight(end))


def complaint_stats(
    *, user, month: date | None = None, district: str | None = None, category: str | None = None
) -> dict:
    """Counts by district, category and month over the 12 months ending with ``month`` (default: the
    current Beijing month), and that month's top problems: the categories ranked by count with their
    share and the change against the month before, the top district × category pairs, and overdue counts.
    Of the complaints against the merchants of regulator ``user``'s jurisdiction.
    """
    language = get_language() or "zh-hans"
    this_month = _month_start(month or clock.local_date())
    previous_month, next_month = _month_start(this_month, -1), _month_start(this_month, 1)
    window_start = _month_start(this_month, 1 - STATS_MONTHS)

    complaints = oversight_of(user).narrow(Complaint.objects.all(), path="merchant__")
    if district:
        complaints = complaints.filter(merchant__district=district)
    if category:
        complaints = complaints.filter(category=category)
    was_overdue = Q(overdue_at__isnull=False)
    in_window = complaints.filter(_between(window_start, next_month))
    in_month = complaints.filter(_between(this_month, next_month))

    per_month = {
        row["month"].astimezone(clock.BEIJING).date(): row
        for row in in_window.annotate(month=TruncMonth("created_at", tzinfo=clock.BEIJING))
        .values("month")
        .annotate(count=Count("id"), overdue=Count("id", filter=was_overdue))
        .order_by("month")
    }
    by_month = []
    for shift in range(STATS_MONTHS):  # twelve labels, the empty months included
        first = _month_start(window_start, shift)
        row = per_month.get(first, {"count": 0, "overdue": 0})
        by_month.append({"month": _label(first), "count": row["count"], "overdue": row["overdue"]})

    by_district = [
        {
            "district": row["merchant__district"],
            "district_name": district_name(row["merchant__district"], language),
            "count": row["count"],
            "overdue": row["overdue"],
        }
        for row in in_window.values("merchant__district")
        .annotate(count=Count("id"), overdue=Count("id", filter=was_overdue))
        .order_by("-count", "merchant__district")
    ]
    by_category = list(
        in_window.values("category")
        .annotate(count=Count("id"), overdue=Count("id", filter=was_overdue))
        .order_by("-count", "category")
    )

    month_totals = in_month.aggregate(total=Count("id"), overdue=Count("id", filter=was_overdue))
    total = month_totals["total"]
    ranked = (
        complaints.filter(_between(previous_month, next_month))
        .values("category")
        .annotate(
            count=Count("id", filter=_between(this_month, next_month)),
            previous=Count("id", filter=_between(previous_month, this_month)),
        )
        .order_by("-count", "-previous", "category")
    )
    top_categories = [
        {
            "category": row["category"],
            "count": row["count"],
            "share": round(row["count"] / total, 4) if total else 0.0,
            "previous": row["previous"],
            "change": row["count"] - row["previous"],
        }
        for row in ranked
    ]
    top_pairs = [
        {
            "district": row["merchant__district"],
            "district_name": district_name(row["merchant__district"], language),
            "category": row["category"],
            "count": row["count"],
        }
        for row in in_month.values("merchant__district", "category")
        .annotate(count=Count("id"))
        .order_by("-count", "merchant__district", "category")[:TOP_PAIRS]
    ]
    overdue_now = complaints.filter(state=Complaint.State.OVERDUE).count()

    return {
        "month": _label(this_month),
        "window": {"from": _label(window_start), "to": _label(this_month)},
        "district": district,
        "category": category,
        "total": total,
        "overdue": {"unanswered_now": overdue_now, "month": month_totals["overdue"]},
        "by_district": by_district,
        "by_category": by_category,
        "by_month": by_month,
        "top_categories": top_categories,
        "top_pairs": top_pairs,
    }
