"""The periodic report's figures: one jurisdiction, one period, each section in one or a few SQL
aggregates (``GROUP BY`` over indexed columns); Python only merges the grouped rows.

Every read starts from ``jurisdiction.merchants()`` (a subquery), so a district's report counts its
merchants alone. A period is ``[starts_at, cutoff)``: ``cutoff`` is its end, or the moment the
report is generated while the period is not over. ``as_of`` is that moment; deadlines are judged
at it (a complaint received on the period's last evening may still be within its deadline).

The sections, as JSON (money in integer fen, moments ISO 8601):

escrow      per (district, category): ``held_start`` and ``held_end``, the card escrow at the
            period's start and cutoff; ``paid_in`` (purchase entries), ``released`` (release and
            fee entries: to the merchant), ``refunded`` (refund entries) and ``corrected``
            (correction entries, net into escrow) during it; ``cards_sold`` (cards paid in it).
            ``held_end = held_start + paid_in - released - refunded + corrected``: the journal's
            own arithmetic, which the report checks. Balances at a past moment come from the
            ledger: today's balances of the card escrow accounts less the net of the postings
            since that moment (journal entries by their ``created_at`` index), so a report of last
            month reads last month's postings and not the whole journal.
filings     filings (备案) of the merchants: required in the period by their state now, submitted
            in the period, accepted in it, deadlines falling in it and those missed (nothing
            submitted by the deadline, by the latest submission).
complaints  received in the period, per category: answered by their deadline, answered late,
            unanswered past it at ``as_of``, still within it; hotline work orders among them.
            "Answered on time" is the public record's rate: on time ÷ the complaints whose outcome
            is known (answered, or past their deadline).
refunds     requested in the period, per reason: count, amount and fees; paid by ``due_by``, paid
            late, unpaid past ``due_by`` at ``as_of``, unpaid and still within it; failed now.
riskiest    the ``RISKIEST`` merchants by the score of their newest assessment before the cutoff,
            with its level, time and its largest signals.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from complaints.models import Complaint
from consumers.models import Card
from escrow.models import Account, JournalEntry, Posting
from merchants.models import Filing
from refunds.models import Refund
from regulator.models import RiskAssessment
from regulator.selectors.jurisdiction import Jurisdiction

RISKIEST = 10  # merchants listed
TOP_SIGNALS = 3  # signals shown per merchant

ESCROW_FIELDS = ("held_start", "paid_in", "released", "refunded", "corrected", "held_end", "cards_sold")
COMPLAINT_FIELDS = ("count", "on_time", "answered_late", "unanswered_late", "pending", "hotline")
REFUND_FIELDS = ("count", "amount", "fee", "on_time", "paid_late", "unpaid_late", "pending", "failed")

Code = JournalEntry.Code


def _zero(value: int | None) -> int:
    return value or 0


def escrow_figures(*, jurisdiction: Jurisdiction, starts_at: datetime, cutoff: datetime) -> list[dict[str, Any]]:
    """Escrow per (district, category) of the jurisdiction's merchants, sorted by both; only the
    pairs with any money or card."""
    merchants = jurisdiction.merchants().values("pk")
    district, category = "account__card__merchant__district", "account__card__merchant__category"
    into_escrow = -F("amount")  # card escrow is a credit-side account: a credit (negative) raises it
    in_period = Q(entry__created_at__lt=cutoff)
    flows = (
        Posting.objects.filter(
            account__kind=Account.Kind.CARD_ESCROW,
            account__card__merchant__in=merchants,
            entry__created_at__gte=starts_at,
        )
        .values(district, category)
        .annotate(
            since_start=Sum(into_escrow),
            since_cutoff=Sum(into_escrow, filter=Q(entry__created_at__gte=cutoff)),
            paid_in=Sum(into_escrow, filter=in_period & Q(entry__code=Code.PURCHASE)),
            released=Sum("amount", filter=in_period & Q(entry__code__in=[Code.RELEASE, Code.FEE])),
            refunded=Sum("amount", filter=in_period & Q(entry__code=Code.REFUND)),
            corrected=Sum(into_escrow, filter=in_period & Q(entry__code=Code.CORRECTION)),
        )
        .values_list(district, category, "since_start", "since_cutoff", "paid_in", "released", "refunded", "corrected")
    )
    balances = (
        Account.objects.filter(kind=Account.Kind.CARD_ESCROW, balance__gt=0, card__merchant__in=merchants)
        .values("card__merchant__district", "card__merchant__category")
        .annotate(total=Sum("balance"))
        .values_list("card__merchant__district", "card__merchant__category", "total")
    )
    sold = (
        Card.objects.filter(merchant__in=merchants, paid_at__gte=starts_at, paid_at__lt=cutoff)
        .values("merchant__district", "merchant__category")
        .annotate(cards=Count("pk"))
        .values_list("merchant__district", "merchant__category", "cards")
    )
    now = {(d, c): total for d, c, total in balances}
    cards = {(d, c): n for d, c, n in sold}
    moved = {(d, c): rest for d, c, *rest in flows}
    rows = []
    for key in sorted(set(now) | set(cards) | set(moved)):
        since_start, since_cutoff, paid_in, released, refunded, corrected = map(_zero, moved.get(key, [0] * 6))
        row = {
            "district": key[0],
            "category": key[1],
            "held_start": now.get(key, 0) - since_start,
            "paid_in": paid_in,
            "released": released,
            "refunded": refunded,
            "corrected": corrected,
            "held_end": now.get(key, 0) - since_cutoff,
            "cards_sold": cards.get(key, 0),
        }
        if any(row[name] for name in ESCROW_FIELDS):
            rows.append(row)
    return rows


def escrow_by(rows: Iterable[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """The escrow rows summed by ``"district"`` or ``"category"``, sorted by it."""
    grouped: dict[str, dict[str, Any]] = {}
    for row in rows:
        line = grouped.setdefault(row[by], {by: row[by], **dict.fromkeys(ESCROW_FIELDS, 0)})
        for name in ESCROW_FIELDS:
            line[name] += row[name]
    return [grouped[key] for key in sorted(grouped)]


def filing_figures(*, jurisdiction: Jurisdiction, starts_at: datetime, cutoff: datetime) -> dict[str, Any]:
    """Filings (备案) of the jurisdiction's merchants in the period, in two aggregates."""
    filings = Filing.objects.filter(merchant__in=jurisdiction.merchants().values("pk"))
    deadline_in_period = Q(due_by__gt=starts_at, due_by__lte=cutoff)
    totals = filings.aggregate(
        required=Count("pk", filter=Q(created_at__gte=starts_at, created_at__lt=cutoff)),
        submitted=Count("pk", filter=Q(submitted_at__gte=starts_at, submitted_at__lt=cutoff)),
        accepted=Count("pk", filter=Q(state=Filing.State.ACCEPTED, decided_at__gte=starts_at, decided_at__lt=cutoff)),
        due=Count("pk", filter=deadline_in_period),
        missed=Count(
            "pk", filter=deadline_in_period & (Q(submitted_at__isnull=True) | Q(submitted_at__gt=F("due_by")))
        ),
    )
    by_state = dict(
        filings.filter(created_at__gte=starts_at, created_at__lt=cutoff)
        .values("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    return {**totals, "by_state": {state: by_state.get(state, 0) for state in Filing.State.values}}


def complaint_figures(
    *, jurisdiction: Jurisdiction, starts_at: datetime, cutoff: datetime, as_of: datetime
) -> list[dict[str, Any]]:
    """Complaints received in the period per category (one ``GROUP BY``), sorted by category."""
    answered = Q(responded_at__isnull=False)
    rows = (
        Complaint.objects.filter(
            merchant__in=jurisdiction.merchants().values("pk"), created_at__gte=starts_at, created_at__lt=cutoff
        )
        .values("category")
        .annotate(
            count=Count("pk"),
            on_time=Count("pk", filter=answered & Q(responded_at__lte=F("respond_by"))),
            answered_late=Count("pk", filter=answered & Q(responded_at__gt=F("respond_by"))),
            unanswered_late=Count("pk", filter=Q(responded_at__isnull=True, respond_by__lte=as_of)),
            pending=Count("pk", filter=Q(responded_at__isnull=True, respond_by__gt=as_of)),
            hotline=Count("pk", filter=Q(source=Complaint.Source.HOTLINE)),
        )
        .order_by("category")
    )
    return [{"category": row["category"], **{name: row[name] for name in COMPLAINT_FIELDS}} for row in rows]


def refund_figures(
    *, jurisdiction: Jurisdiction, starts_at: datetime, cutoff: datetime, as_of: datetime
) -> list[dict[str, Any]]:
    """Refunds requested in the period per reason (one ``GROUP BY``), sorted by reason."""
    paid = Q(paid_at__isnull=False)
    rows = (
        Refund.objects.filter(
            card__merchant__in=jurisdiction.merchants().values("pk"), created_at__gte=starts_at, created_at__lt=cutoff
        )
        .values("reason")
        .annotate(
            count=Count("pk"),
            amount=Coalesce(Sum("amount"), 0),
            fee=Coalesce(Sum("fee"), 0),
            on_time=Count("pk", filter=paid & Q(paid_at__lte=F("due_by"))),
            paid_late=Count("pk", filter=paid & Q(paid_at__gt=F("due_by"))),
            unpaid_late=Count("pk", filter=Q(paid_at__isnull=True, due_by__lt=as_of)),
            pending=Count("pk", filter=Q(paid_at__isnull=True, due_by__gte=as_of)),
            failed=Count("pk", filter=Q(state=Refund.State.FAILED)),
        )
        .order_by("reason")
    )
    return [{"reason": row["reason"], **{name: row[name] for name in REFUND_FIELDS}} for row in rows]


def totals(rows: Iterable[dict[str, Any]], fields: tuple[str, ...]) -> dict[str, int]:
    """Rows (escrow, complaints, refunds) summed field by field."""
    rows = list(rows)
    return {name: sum(row[name] for row in rows) for name in fields}


def _top_signals(signals: list[dict]) -> list[dict[str, Any]]:
    ranked = sorted(
        (signal for signal in signals if (signal.get("contribution") or 0) > 0),
        key=lambda signal: (-(signal.get("contribution") or 0), signal.get("name", "")),
    )
    return [
        {"name": signal.get("name", ""), "value": signal.get("value"), "contribution": signal.get("contribution")}
        for signal in ranked[:TOP_SIGNALS]
    ]


def riskiest_figures(*, jurisdiction: Jurisdiction, cutoff: datetime, limit: int = RISKIEST) -> list[dict[str, Any]]:
    """The ``limit`` merchants of the jurisdiction with the highest score at the cutoff: each
    merchant's newest assessment before it (the ``(merchant, -computed_at)`` index), highest first."""
    newest = RiskAssessment.objects.filter(merchant=OuterRef("pk"), computed_at__lt=cutoff).order_by(
        "-computed_at", "-pk"
    )
    latest = jurisdiction.merchants().annotate(assessment=Subquery(newest.values("pk")[:1])).values("assessment")
    assessments = (
        RiskAssessment.objects.filter(pk__in=latest)
        .select_related("merchant")
        .order_by("-score", "-computed_at", "merchant__name", "pk")[:limit]
    )
    return [
        {
            "merchant": str(assessment.merchant_id),
            "name": assessment.merchant.name,
            "license_number": assessment.merchant.license_number,
            "district": assessment.merchant.district,
            "category": assessment.merchant.category,
            "score": assessment.score,
            "level": assessment.level,
            "computed_at": assessment.computed_at.isoformat(),
            "signals": _top_signals(assessment.signals),
        }
        for assessment in assessments
    ]
