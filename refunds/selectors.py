"""Reads for refunds: whether a merchant is in default (the one place those conditions live), and
the refunds an operator must watch (unpaid past their deadline, or refused by the gateway)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.formats import date_format
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from consumers.models import Card
from consumers.selectors import operator_change_cards_refunded
from core import clock
from core.errors import InvalidInput
from merchants.models import Merchant
from merchants.registry import district_name
from merchants.selectors import operator_change_in_effect, relocation_latest, relocation_refund_open
from refunds.models import MassRefund, Refund, RefundEntitlement

# Why a holder may take a ``merchant_default`` refund, most serious first.
DEFAULT_REASONS = {
    "complaint_upheld": gettext_lazy("the regulator upheld a complaint about this card"),
    "closing": gettext_lazy("the merchant has given notice of closing"),
    "operator_changed": gettext_lazy("the merchant's operator changed and the holder did not consent to continue"),
    "releases_frozen": gettext_lazy("the regulator froze the merchant's releases"),
    "sales_frozen": gettext_lazy("the regulator froze the merchant's sales"),
    "flagged": gettext_lazy("the regulator flagged the merchant"),
    "relocating": gettext_lazy("the merchant has given notice of moving"),
}


def merchant_default_reasons(*, merchant: Merchant, card_id: Any = None, entitled: bool | None = None) -> list[str]:
    """Why ``merchant`` is in default towards the holder of ``card_id`` (keys of ``DEFAULT_REASONS``,
    in its order); empty when it is in good standing. ``merchant`` must be read fresh (locked, in a
    refund) by the caller. ``entitled`` (whether the card has a ``RefundEntitlement``) may be given
    when already known (``cards_entitled`` for a page of cards), else it is looked up. A notice of
    moving and a change of operator are read from the merchant row (``relocation_refund_until``,
    ``operator_changes_on``): only a change whose day has come costs a query, for the card's consent."""
    reasons = []
    if entitled is None:
        entitled = card_id is not None and RefundEntitlement.objects.filter(card_id=card_id).exists()
    if entitled:
        reasons.append("complaint_upheld")
    if merchant.status == Merchant.Status.CLOSING:
        reasons.append("closing")
    if card_id is not None and _not_continuing(merchant=merchant, card_id=card_id):
        reasons.append("operator_changed")
    if merchant.releases_frozen:
        reasons.append("releases_frozen")
    if merchant.sales_frozen:
        reasons.append("sales_frozen")
    if merchant.flagged:
        reasons.append("flagged")
    if relocation_refund_open(merchant=merchant):
        reasons.append("relocating")
    return reasons


def _not_continuing(*, merchant: Merchant, card_id: Any) -> bool:
    """Whether the card is one its merchant's change of operator, its day come, refunds: paid before
    the day and its holder did not consent. No query unless a change's day has come."""
    change = operator_change_in_effect(merchant=merchant)
    return change is not None and operator_change_cards_refunded(change=change).filter(pk=card_id).exists()


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
        elif reason == "relocating" and (relocation := relocation_latest(merchant=merchant)) is not None:
            texts.append(
                _(
                    "The merchant has given notice of moving to %(address)s on %(date)s: you may take back all "
                    "the money left on this card, without a fee, until %(until)s."
                )
                % {
                    "address": f"{district_name(relocation.district, get_language() or 'zh-hans')}{relocation.address}",
                    "date": date_format(relocation.moves_on, "DATE_FORMAT"),
                    "until": date_format(relocation.refund_until, "DATE_FORMAT"),
                }
            )
        elif reason == "operator_changed" and merchant.operator_changes_on:
            texts.append(
                _(
                    "The merchant's operator changed on %(date)s and you did not consent to continue: everything "
                    "left on this card is refunded to you, without a fee."
                )
                % {"date": date_format(merchant.operator_changes_on, "DATE_FORMAT")}
            )
        else:
            texts.append(str(DEFAULT_REASONS[reason]))
    return texts


def cards_entitled(*, card_ids: list[Any]) -> set[Any]:
    """The cards among ``card_ids`` whose holder is entitled to a ``merchant_default`` refund by an
    upheld complaint (one query for a page of cards)."""
    return set(RefundEntitlement.objects.filter(card_id__in=card_ids).values_list("card_id", flat=True))


def cards_refundable_for_default(*, card_ids: list[Any]) -> set[Any]:
    """The cards among ``card_ids`` that a ``merchant_default`` refund would refund now: holding
    escrow, not refunded, their merchant in default towards them (three queries for a page, and one a
    card at a merchant whose change of operator's day has come)."""
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


def operator_change_refund_job(*, operator_change_id: Any) -> MassRefund | None:
    """The newest mass refund of a change of operator's cards (its progress), or None before its day."""
    return MassRefund.objects.filter(operator_change_id=operator_change_id).order_by("-created_at", "-pk").first()
