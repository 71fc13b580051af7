"""Reads of merchants' risk for the regulator: the list, one merchant's breakdown, its history.
Each is of the regulator's jurisdiction: a merchant, or an action on one, outside it is not found."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from complaints.models import Complaint
from consumers.models import Card
from core import clock
from core.errors import InvalidInput, NotFound
from merchants.models import Merchant
from regulator.models import RegulatorAction, RiskAssessment
from regulator.selectors.jurisdiction import Jurisdiction
from regulator.services.risk import HOLDING

ORDERINGS = {
    "risk_score",
    "-risk_score",
    "name",
    "-name",
    "escrow_outstanding",
    "-escrow_outstanding",
    "complaints_90d",
    "-complaints_90d",
    "created_at",
    "-created_at",
}


def _subquery_total(queryset, expression):
    """One correlated aggregate per merchant row (the list is paginated: 50 rows a page)."""
    return Coalesce(
        Subquery(queryset.values("merchant_id").annotate(total=expression).values("total")[:1]),
        Value(0),
        output_field=IntegerField(),
    )


def regulator_merchants(
    *,
    jurisdiction: Jurisdiction,
    risk_level: str | None = None,
    district: str | None = None,
    category: str | None = None,
    flagged: bool | None = None,
    ordering: str = "-risk_score",
) -> QuerySet[Merchant]:
    """The jurisdiction's merchants with their stored risk and the live figures of API.md's list."""
    if ordering not in ORDERINGS:
        raise InvalidInput(errors={"ordering": [f"one of {', '.join(sorted(ORDERINGS))}"]})
    since = clock.now() - timedelta(days=90)
    holding = Card.objects.filter(merchant_id=OuterRef("pk"), state__in=HOLDING)
    rows = jurisdiction.merchants().annotate(
        escrow_outstanding=_subquery_total(holding, Sum(F("price") - F("released_total") - F("refunded_total"))),
        active_cards=_subquery_total(holding, Count("pk")),
        complaints_90d=_subquery_total(
            Complaint.objects.filter(merchant_id=OuterRef("pk"), created_at__gte=since), Count("pk")
        ),
    )
    if risk_level:
        rows = rows.filter(risk_level=risk_level)
    if district:
        rows = rows.filter(district=district)
    if category:
        rows = rows.filter(category=category)
    if flagged is not None:
        rows = rows.filter(flagged=flagged)
    return rows.order_by(ordering, "pk")


def merchant_get(*, jurisdiction: Jurisdiction, merchant_id) -> Merchant:
    try:
        return jurisdiction.merchants().get(pk=merchant_id)
    except (Merchant.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound() from exc


def risk_latest(*, merchant: Merchant) -> RiskAssessment | None:
    return RiskAssessment.objects.filter(merchant=merchant).order_by("-computed_at", "-pk").first()


def risk_history(*, merchant: Merchant, limit: int = 365) -> list[tuple]:
    """``(computed_at, score, level)`` oldest first, the newest ``limit`` of them."""
    rows = RiskAssessment.objects.filter(merchant=merchant).order_by("-computed_at", "-pk")
    return list(reversed(list(rows.values_list("computed_at", "score", "level")[:limit])))


def action_get(*, jurisdiction: Jurisdiction, action_id) -> RegulatorAction:
    actions = jurisdiction.narrow(RegulatorAction.objects.select_related("mass_refund", "merchant"), path="merchant__")
    try:
        return actions.get(pk=action_id)
    except (RegulatorAction.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound() from exc


def action_progress(action: RegulatorAction) -> dict[str, int]:
    """``{done, total}``: the mass refund's cards for ``order_refunds``, else the one change."""
    if action.mass_refund is not None:
        return {"done": action.mass_refund.done, "total": action.mass_refund.total}
    finished = action.state == RegulatorAction.State.DONE
    return {"done": 1 if finished else 0, "total": 1}
