"""What refunds answer and do for merchants (registered with ``merchants.handlers`` in
``RefundsConfig.ready``): the refunds a day's settlement counts, and the closing day's refund of
every card that still holds escrow."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count

from refunds.models import MassRefund, Refund
from refunds.services import cards_holding_escrow, mass_refund_start


def merchant_refund_counts(*, since: datetime, cutoff: datetime) -> dict[Any, int]:
    """``{merchant_id: n}``: the refunds of each merchant's cards booked in ``(since, cutoff]`` (a
    settlement's ``refunds_count``), one aggregate on the refunds' ``created_at``."""
    rows = (
        Refund.objects.filter(created_at__gt=since, created_at__lte=cutoff)
        .values("card__merchant_id")
        .annotate(n=Count("id"))
        .values_list("card__merchant_id", "n")
    )
    return dict(rows)


def merchant_cards_left(*, merchant_id: Any) -> bool:
    """Whether any card of the merchant still holds escrow (a closing merchant is not closed yet)."""
    return cards_holding_escrow(merchant_id=merchant_id).exists()


def merchant_closure_refunds_start(*, merchant_id: Any) -> MassRefund:
    """The merchant's closing day has come: refund every card that holds escrow in full
    (``merchant_closure``), in the background; a mass refund already running is returned."""
    return mass_refund_start(merchant_id=merchant_id, reason=MassRefund.Reason.MERCHANT_CLOSURE)
