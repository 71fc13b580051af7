"""The audit report's reads: each section's figures in one aggregate or one bounded query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce

from complaints.models import Complaint
from consumers.models import Card
from escrow.models import Account, JournalEntry, Posting
from merchants.models import Merchant
from refunds.models import Refund
from regulator.models import AuditEvent
from regulator.reports.names import AUDIT_LINES, LATEST_COMPLAINTS, LEDGER_LINES, MONTHS
from regulator.selectors.dashboard import dashboard_sales_and_releases
from regulator.selectors.jurisdiction import CITY
from regulator.services.risk import HOLDING


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """One Beijing month: ``sales`` fen paid for ``cards`` cards, ``released`` fen of releases."""

    month: date  # its first day
    cards: int
    sales: int
    released: int


@dataclass(frozen=True, slots=True)
class ExtractLine:
    """One journal entry of the ledger extract; ``amount`` is what it moved (its debits)."""

    entry_id: int
    created_at: datetime
    code: str
    amount: int
    chain: int
    seq: int
    hash: str


def report_monthly_figures(*, merchant: Merchant, months: int = MONTHS) -> list[MonthFigures]:
    """Selector: card sales and releases of the last ``months`` Beijing months (this one included),
    oldest first: the dashboard's trend, of this merchant's cards and settlement account."""
    rows = dashboard_sales_and_releases(jurisdiction=CITY, months=months, merchant=merchant)  # the merchant's own
    return [MonthFigures(**row) for row in rows]


def report_escrow_figures(*, merchant: Merchant) -> dict[str, int]:
    """Selector: the merchant's money, in fen. Card totals in one aggregate (``escrow`` is held by
    the cards in a holding state, as the risk model counts it); the settlement account's postings by
    entry code in another; refunds in a third."""
    cards = Card.objects.filter(merchant=merchant, paid_at__isnull=False).aggregate(
        sold_cards=Count("pk"),
        sold=Coalesce(Sum("price"), 0),
        released=Coalesce(Sum("released_total"), 0),
        refunded=Coalesce(Sum("refunded_total"), 0),
        holding_cards=Count("pk", filter=Q(state__in=HOLDING)),
        escrow=Coalesce(Sum(F("price") - F("released_total") - F("refunded_total"), filter=Q(state__in=HOLDING)), 0),
    )
    by_code = dict(
        Posting.objects.filter(account_id=merchant.settlement_account_id)
        .values("entry__code")
        .annotate(total=Sum("amount"))
        .values_list("entry__code", "total")
    )
    refunds = Refund.objects.filter(card__merchant=merchant).aggregate(
        count=Count("pk"), pending=Count("pk", filter=~Q(state=Refund.State.PAID))
    )
    available = Account.objects.values_list("balance", flat=True).get(pk=merchant.settlement_account_id)
    return {
        **cards,
        "ledger_released": -(by_code.get(JournalEntry.Code.RELEASE) or 0),
        "ledger_fees": -(by_code.get(JournalEntry.Code.FEE) or 0),
        "paid_out": by_code.get(JournalEntry.Code.PAYOUT) or 0,
        "available": available,
        "refunds": refunds["count"],
        "refunds_unpaid": refunds["pending"],
    }


def report_complaint_counts(*, merchant: Merchant) -> dict[tuple[str, str], int]:
    """Selector: ``{(category, state): count}`` of all the merchant's complaints, one ``GROUP BY``."""
    rows = (
        Complaint.objects.filter(merchant=merchant)
        .values("category", "state")
        .annotate(n=Count("pk"))
        .values_list("category", "state", "n")
    )
    return {(category, state): n for category, state, n in rows}


def report_latest_complaints(*, merchant: Merchant, limit: int = LATEST_COMPLAINTS) -> list[Complaint]:
    return list(Complaint.objects.filter(merchant=merchant).order_by("-created_at", "-pk")[:limit])


def report_audit_events(*, merchant: Merchant, limit: int = AUDIT_LINES) -> tuple[list[AuditEvent], int]:
    """Selector: the newest ``limit`` audit events of the merchant, newest first, and how many it has."""
    events = AuditEvent.objects.filter(merchant=merchant)
    newest = list(events.select_related("actor").order_by("-created_at", "-pk")[:limit])
    return newest, (len(newest) if len(newest) < limit else events.count())


def report_ledger_extract(*, merchant: Merchant, limit: int = LEDGER_LINES) -> list[ExtractLine]:
    """Selector: the newest ``limit`` journal entries that touch the merchant's settlement account
    or one of its cards' escrow accounts, newest first.

    The newest ``limit`` entries of each kind are found apart (the settlement account's postings by
    its index; the cards' escrow postings through the cards' merchant index), then the entries
    among them are read once, with what each moved."""
    newest = ("-entry__created_at", "-entry_id")
    settlement = Posting.objects.filter(account_id=merchant.settlement_account_id).order_by(*newest)
    escrow = Posting.objects.filter(account__card__merchant=merchant).order_by(*newest)
    ids = set(settlement.values_list("entry_id", flat=True)[:limit])
    ids |= set(escrow.values_list("entry_id", flat=True)[:limit])
    rows = (
        JournalEntry.objects.filter(pk__in=ids)
        .annotate(moved=Sum("postings__amount", filter=Q(postings__amount__gt=0)))
        .order_by("-created_at", "-pk")
        .values_list("pk", "created_at", "code", "moved", "chain", "seq", "hash")[:limit]
    )
    return [
        ExtractLine(entry_id=pk, created_at=at, code=code, amount=moved or 0, chain=chain, seq=seq, hash=link)
        for pk, at, code, moved, chain, seq, link in rows
    ]
