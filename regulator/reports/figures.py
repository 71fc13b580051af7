"""The audit report's reads: each section's figures in one aggregate or one bounded query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth

from consumers.models import Card
from core import clock
from escrow.models import Account, JournalEntry, Posting
from merchants.models import Merchant
from refunds.models import Refund
from regulator.models import AuditEvent, Complaint
from regulator.reports.names import AUDIT_LINES, LATEST_COMPLAINTS, LEDGER_LINES, MONTHS
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


def _month_start(day: date, back: int) -> date:
    """The first day of the month ``back`` months before ``day``'s."""
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def report_monthly_figures(*, merchant: Merchant, months: int = MONTHS) -> list[MonthFigures]:
    """Selector: card sales and releases of the last ``months`` Beijing months (this one included),
    oldest first. Two ``GROUP BY`` month queries: cards by ``paid_at`` (its index), and the release
    postings on the merchant's settlement account by their entry's time (the (account, entry) index)."""
    today = clock.local_date()
    since = clock.local_midnight(_month_start(today, months - 1))
    sales = (
        Card.objects.filter(merchant=merchant, paid_at__gte=since)
        .annotate(month=TruncMonth("paid_at", tzinfo=clock.BEIJING))
        .values("month")
        .annotate(cards=Count("pk"), sales=Sum("price"))
        .values_list("month", "cards", "sales")
    )
    releases = (
        Posting.objects.filter(
            account_id=merchant.settlement_account_id,
            entry__code=JournalEntry.Code.RELEASE,
            entry__created_at__gte=since,
        )
        .annotate(month=TruncMonth("entry__created_at", tzinfo=clock.BEIJING))
        .values("month")
        .annotate(released=Sum(-F("amount")))
        .values_list("month", "released")
    )

    def key(month: datetime | date) -> date:
        local = clock.local(month) if isinstance(month, datetime) else month
        return date(local.year, local.month, 1)

    sold = {key(month): (cards, total) for month, cards, total in sales}
    released = {key(month): total for month, total in releases}
    rows = []
    for back in range(months - 1, -1, -1):
        month = _month_start(today, back)
        cards, total = sold.get(month, (0, 0))
        rows.append(MonthFigures(month=month, cards=cards, sales=total or 0, released=released.get(month) or 0))
    return rows


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
