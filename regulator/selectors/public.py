"""The public record (公示信息): what anyone, without logging in, may read about a merchant.

Only the merchant's own facts and figures over all of its customers; nothing about any one consumer
(no name, phone, card or count per person). The figures, as the API schema and the page define them:

``filing_status``               ``merchants.selectors.merchant_filing_status``: ``filed`` (a filing
                                accepted), ``not_filed`` (one required, not yet accepted), ``not_required``.
``risk_warning``                the regulator's public warning, the same text consumers see on the
                                merchant's page and its products, while the merchant is flagged; else None.
``complaints_answered_on_time`` of the merchant's complaints received in the last 12 months whose
                                outcome is known (answered, or past their deadline unanswered), the
                                percentage answered by their deadline, to one decimal; None when there is none.
``escrow_held_pct``             of the money paid for the merchant's cards still in use (cooling-off,
                                active or frozen), the percentage still held in escrow by the custodian
                                (the rest was released to the merchant as holders confirmed services),
                                to one decimal; None when no card is in use.

A record is computed once and kept in Django's cache for ``PUBLIC_RECORD_CACHE_SECONDS``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Q, QuerySet, Sum

from complaints.models import Complaint
from consumers.models import Card
from core import clock
from core.errors import NotFound
from merchants.models import Merchant
from merchants.selectors import merchant_filing_status

COMPLAINT_WINDOW = timedelta(days=365)


def public_merchants(*, q: str | None = None, district: str | None = None) -> QuerySet[Merchant]:
    """Merchants by name (any part of it, any case) or exact licence number, and district code; by name."""
    merchants = Merchant.objects.only("id", "name", "license_number", "district", "category", "status", "risk_warning")
    if q:
        q = q.strip()
        merchants = merchants.filter(Q(name__icontains=q) | Q(license_number=q.upper()))
    if district:
        merchants = merchants.filter(district=district)
    return merchants.order_by("name", "pk")


def _percent(part: int, whole: int) -> float | None:
    """``part / whole`` as a percentage to one decimal (half up, in integers); None when ``whole`` is 0."""
    if whole <= 0:
        return None
    tenths = (part * 1000 + whole // 2) // whole
    return tenths / 10


def complaints_answered_on_time(*, merchant_id: Any) -> tuple[float | None, int]:
    """(percentage answered by their deadline, complaints counted) over the last 12 months."""
    now = clock.now()
    counted = Complaint.objects.filter(merchant_id=merchant_id, created_at__gte=now - COMPLAINT_WINDOW).filter(
        Q(responded_at__isnull=False) | Q(respond_by__lte=now)
    )
    totals = counted.aggregate(
        total=Count("pk"), on_time=Count("pk", filter=Q(responded_at__isnull=False, responded_at__lte=F("respond_by")))
    )
    return _percent(totals["on_time"], totals["total"]), totals["total"]


def escrow_held_pct(*, merchant_id: Any) -> float | None:
    """Escrow still held for the merchant's cards in use ÷ the money paid for them, as a percentage."""
    totals = Card.objects.filter(merchant_id=merchant_id, state__in=Card.HOLDING).aggregate(
        paid=Sum("price"), held=Sum("escrow_account__balance")
    )
    return _percent(totals["held"] or 0, totals["paid"] or 0)


def _record(merchant: Merchant) -> dict:
    on_time, counted = complaints_answered_on_time(merchant_id=merchant.pk)
    return {
        "id": str(merchant.pk),
        "name": merchant.name,
        "license_number": merchant.license_number,
        "district": merchant.district,
        "category": merchant.category,
        "status": merchant.status,
        "filing_status": merchant_filing_status(merchant=merchant),
        "risk_warning": (merchant.risk_warning or None) if merchant.flagged else None,
        "complaints_answered_on_time": on_time,
        "complaints_counted": counted,
        "escrow_held_pct": escrow_held_pct(merchant_id=merchant.pk),
        "as_of": clock.now(),
    }


def public_merchant_record(*, merchant_id: Any) -> dict:
    """One merchant's public record (codes, not labels: the caller names them in its language),
    from the cache when it is there. A malformed or unknown id is ``NotFound``."""
    try:
        pk = uuid.UUID(str(merchant_id))
    except ValueError as exc:
        raise NotFound() from exc
    key = f"public-merchant:{pk}"
    record = cache.get(key)
    if record is None:
        try:
            merchant = Merchant.objects.get(pk=pk)
        except Merchant.DoesNotExist as exc:
            raise NotFound() from exc
        record = _record(merchant)
        cache.set(key, record, timeout=settings.PUBLIC_RECORD_CACHE_SECONDS)
    return record
