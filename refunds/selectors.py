"""Reads for refunds: whether a merchant is in default (the one place those conditions live), and
the refunds an operator must watch (unpaid past their deadline, or refused by the gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consumers.models import Card
from core import clock
from core.errors import InvalidInput
from merchants.models import Merchant
from refunds.models import Refund, RefundEntitlement

# Why a holder may take a ``merchant_default`` refund, most serious first. (A relocation notice
# joins this list when relocations exist: add it here and nowhere else.)
DEFAULT_REASONS = {
    "complaint_upheld": gettext_lazy("the regulator upheld a complaint about this card"),
    "closing": gettext_lazy("the merchant has given notice of closing"),
    "releases_frozen": gettext_lazy("the regulator froze the merchant's releases"),
    "sales_frozen": gettext_lazy("the regulator froze the merchant's sales"),
    "flagged": gettext_lazy("the regulator flagged the merchant"),
}


def merchant_default_reasons(*, merchant: Merchant, card_id: Any = None, entitled: bool | None = None) -> list[str]:
    """Why ``merchant`` is in default towards the holder of ``card_id`` (keys of ``DEFAULT_REASONS``,
    in its order); empty when it is in good standing. ``merchant`` must be read fresh (locked, in a
    refund) by the caller. ``entitled`` (whether the card has a ``RefundEntitlement``) may be given
    when already known (``cards_entitled`` for a page of cards), else it is looked up."""
    reasons = []
    if entitled is None:
        entitled = card_id is not None and RefundEntitlement.objects.filter(card_id=card_id).exists()
    if entitled:
        reasons.append("complaint_upheld")
    if merchant.status == Merchant.Status.CLOSING:
        reasons.append("closing")
    if merchant.releases_frozen:
        reasons.append("releases_frozen")
    if merchant.sales_frozen:
        reasons.append("sales_frozen")
    if merchant.flagged:
        reasons.append("flagged")
    return reasons


def merchant_default_explained(*, merchant: Merchant, reasons: list[str]) -> list[str]:
    """``reasons`` in words for the holder's pages (a closing notice with its day, a Beijing date,
    in the page's language: "2027年1月5日")."""
    texts = []
    for reason in reasons:
        if reason == "closing" and merchant.closes_on:
            texts.append(
                _("The merchant has given notice of closing on %(date)s.")
                % {"date": date_format(merchant.closes_on, "DATE_FORMAT")}
            )
        elif reason == "flagged":
            texts.append(_("The regulator has flagged the merchant."))
        elif reason == "sales_frozen":
            texts.append(_("The regulator has frozen the merchant's sales."))
        elif reason == "releases_frozen":
            texts.append(_("The regulator has frozen the merchant's releases."))
        elif reason == "complaint_upheld":
            texts.append(_("The regulator upheld a complaint about this card."))
        else:
            texts.append(str(DEFAULT_REASONS[reason]))
    return texts


def cards_entitled(*, card_ids: list[Any]) -> set[Any]:
    """The cards among ``card_ids`` whose holder is entitled to a ``merchant_default`` refund by an
    upheld complaint (one query for a page of cards)."""
    return set(RefundEntitlement.objects.filter(card_id__in=card_ids).values_list("card_id", flat=True))


def cards_refundable_for_default(*, card_ids: list[Any]) -> set[Any]:
    """The cards among ``card_ids`` that a ``merchant_default`` refund would refund now: holding
    escrow, not refunded, their merchant in default towards them (three queries for a page)."""
    cards = list(Card.objects.select_related("merchant").filter(pk__in=card_ids, state__in=Card.HOLDING))
    ids = [card.pk for card in cards]
    refunded = set(Refund.objects.filter(card_id__in=ids, top_up__isnull=True).values_list("card_id", flat=True))
    entitled = cards_entitled(card_ids=ids)
    return {
        card.pk
        for card in cards
        if card.escrow_left > 0
        and card.pk not in refunded
        and merchant_default_reasons(merchant=card.merchant, card_id=card.pk, entitled=card.pk in entitled)
    }


# --- refunds an operator watches -----------------------------------------------------------------

REGULATOR_ORDERINGS = ("due_by", "-due_by", "created_at", "-created_at")


def refund_is_late(*, at: datetime | None = None) -> Q:
    """Refunds overdue: marked by the job, or unpaid past ``due_by`` by the clock (so nothing depends
    on when the job ran)."""
    at = at or clock.now()
    return Q(overdue_at__isnull=False) | Q(state__in=[Refund.State.PENDING, Refund.State.FAILED], due_by__lt=at)


def refunds_for_regulator(
    *, state: str | None = None, overdue: bool | None = None, ordering: str = "due_by"
) -> QuerySet[Refund]:
    """Refunds with their card and merchant, filtered by ``state`` and ``overdue`` (validated: an
    unknown value is ``InvalidInput``), oldest deadline first by default."""
    errors = {}
    if state is not None and state not in Refund.State.values:
        errors["state"] = [_("One of %(values)s.") % {"values": ", ".join(Refund.State.values)}]
    if ordering not in REGULATOR_ORDERINGS:
        errors["ordering"] = [_("One of %(values)s.") % {"values": ", ".join(REGULATOR_ORDERINGS)}]
    if errors:
        raise InvalidInput(errors=errors)
    refunds = Refund.objects.select_related("card__merchant")
    if state is not None:
        refunds = refunds.filter(state=state)
    if overdue is True:
        refunds = refunds.filter(refund_is_late())
    elif overdue is False:
        refunds = refunds.exclude(refund_is_late())
    return refunds.order_by(ordering, "pk")


def refunds_needing_attention() -> QuerySet[Refund]:
    """Failed refunds and unpaid ones past their deadline, oldest deadline first (the operator's page)."""
    now = clock.now()
    return (
        Refund.objects.select_related("card__merchant")
        .filter(Q(state=Refund.State.FAILED) | Q(state=Refund.State.PENDING, due_by__lt=now))
        .order_by("due_by", "pk")
    )
