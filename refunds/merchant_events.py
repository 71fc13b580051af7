"""What refunds answer and do for merchants (registered with ``merchants.handlers`` in
``RefundsConfig.ready``): the refunds a day's settlement counts, the closing day's refund of every
card that still holds escrow, and the refund, on the day of a change of operator, of every card
whose holder did not consent to continue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count

from merchants.models import OperatorChange
from refunds.models import MassRefund, Refund
from refunds.services import cards_holding_escrow, mass_refund_start, operator_change_cards


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


def operator_change_cards_left(*, operator_change_id: Any) -> bool:
    """Whether any card the change of operator refunds still holds escrow (it is not complete yet)."""
    return operator_change_cards(operator_change_id=operator_change_id).exists()


def operator_change_refunds_start(*, operator_change_id: Any) -> MassRefund:
    """The day of a change of operator has come: refund in full (``merchant_default``) every card paid
    before it whose holder did not consent to continue, in the background; a mass refund of the
    merchant already running is returned."""
    change = OperatorChange.objects.get(pk=operator_change_id)
    return mass_refund_start(
        merchant_id=change.merchant_id, reason=MassRefund.Reason.OPERATOR_CHANGE, operator_change_id=change.pk
    )
