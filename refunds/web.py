"""The pages that show refunds: the consumer's cards (each with the refunds it may take, and why a
merchant in default owes a fee-free one), the refund form, and the merchant's settlement statement
PDF (its cards' refunds are listed in it).

A page that shows several apps' data lives in the highest of them (HOUSE.md): these show cards
(consumers) and merchants beside the refunds, so they are the refunds app's and read the others
through their selectors; their URLs and names are the consumer's and the merchant's
(``refunds.web_urls``). Every page reads through the same selectors and writes through the same
services as the API (``consumers.api``, ``refunds.api``); ``core.web.attempt`` shows the services'
domain errors. The card's complaints are read through the card's relation, as before the move (the
complaints app is above this one).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_fsm import can_proceed

from consumers import selectors as consumer_selectors
from consumers.contract import mask_phone
from consumers.models import Card, TopUp
from consumers.selectors import card_operator_consent
from consumers.web import TopUpForm, TransferOfferForm, card_of_request, consumer_of_request, counter_link
from core import clock
from core.errors import DomainError, NotFound
from core.formatting import percent, yuan
from core.qr import qr_svg
from core.web import attempt, role_required
from merchants.models import OperatorChange
from merchants.selectors import merchant_settlement_get, operator_change_open
from merchants.web import merchant_of_request
from notifications.selectors import notifications_of_user
from refunds.holder_statement import holder_statement_lines, holder_statement_pdf
from refunds.models import Refund
from refunds.selectors import cards_entitled, merchant_default_explained, merchant_default_reasons
from refunds.services import (
    CONSUMER_REASONS,
    REFUNDABLE,
    refund_quote,
    refund_request,
    top_up_refund,
    top_up_refund_quote,
)
from refunds.statement import settlement_statement_pdf

consumer_only = role_required("consumer")
merchant_only = role_required("merchant")

PAGE_SIZE = 30
RECENT_NOTIFICATIONS = 10
RECENT_REDEMPTIONS = 30


# --- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundOption:
    reason: str
    label: str
    amount: int
    fee: int


def _card_by_the_clock(card: Card) -> Card:
    """A copy of the card as the rules see it now: a cooling-off period that ended by the clock makes
    it active even before the periodic job writes so (the model's own transition, in memory only)."""
    card = copy.copy(card)
    if card.state == Card.State.COOLING_OFF and can_proceed(card.activate):
        card.activate()
    return card


def _refund_options(card: Card) -> dict[str, RefundOption]:
    """The consumer's refund reasons that apply to the card now, with what each would pay
    (``refund_quote``, the rule the refund itself applies)."""
    current = _card_by_the_clock(card)
    options = {}
    for reason in CONSUMER_REASONS:
        try:
            amount, fee = refund_quote(card=current, reason=reason)
        except DomainError:
            continue
        options[reason] = RefundOption(reason=reason, label=Refund.Reason(reason).label, amount=amount, fee=fee)
    return options


def _default_reasons(card: Card, *, entitled: bool | None = None) -> list[str]:
    """Why this card can be refunded in full without a fee (its merchant is in default), in words;
    empty when it cannot (good standing, nothing left in escrow, or refunded already)."""
    if card.state not in REFUNDABLE or card.escrow_left <= 0:
        return []
    reasons = merchant_default_reasons(merchant=card.merchant, card_id=card.pk, entitled=entitled)
    return merchant_default_explained(merchant=card.merchant, reasons=reasons)


FINISHED = (Card.State.REFUNDED, Card.State.EXHAUSTED, Card.State.CANCELLED)


@dataclass(frozen=True)
class MerchantNotice:
    """What the holder of a card must know about its merchant: the regulator's public warning, why
    the merchant is in default (flagged, frozen, closing) and whether a fee-free refund is open."""

    risk_warning: str
    reasons: list[str]
    refundable: bool


def _merchant_notice(card: Card, *, entitled: bool | None = None) -> MerchantNotice | None:
    """The notice a card carries, on the card list and the card page; none on a finished card (no
    money of the holder's is left with the merchant) or at a merchant in good standing."""
    if card.state in FINISHED:
        return None
    keys = merchant_default_reasons(merchant=card.merchant, card_id=card.pk, entitled=entitled)
    warning = card.merchant.risk_warning or ""
    if not keys and not warning:
        return None
    return MerchantNotice(
        risk_warning=warning,
        reasons=merchant_default_explained(merchant=card.merchant, reasons=keys),
        refundable=bool(keys) and card.state in REFUNDABLE and card.escrow_left > 0,
    )


@dataclass(frozen=True)
class OperatorChangeNotice:
    """An approved change of the card's merchant's operator: whom to, on which day, the holder's
    answer so far (None: not given, which refunds the card on the day) and whether they may still answer."""

    change: OperatorChange
    consent: bool | None
    open: bool


def _operator_change_notice(card: Card) -> OperatorChangeNotice | None:
    """The question a change of operator asks the holder of this card; none on a finished card or at
    a merchant without an approved change."""
    if card.state in FINISHED:
        return None
    change = operator_change_open(merchant=card.merchant)
    if change is None or change.state != OperatorChange.State.APPROVED:
        return None
    answer = card_operator_consent(card=card, change=change)
    return OperatorChangeNotice(
        change=change,
        consent=None if answer is None else answer.consent,
        open=clock.local_date() < change.changes_on and card.state in REFUNDABLE and card.escrow_left > 0,
    )


def _pending_redemptions(request):
    """Services the merchant started that wait for this consumer's answer and can still be confirmed."""
    return consumer_selectors.redemptions_awaiting_answer(user=request.user).select_related("card__product", "merchant")


# --- the consumer's cards (mounted under /c/) ---------------------------------------------------


@consumer_only
def card_list(request):
    """Every card of the consumer, the merchants' notices to them, and services waiting for confirmation."""
    consumer_of_request(request)
    cards = consumer_selectors.cards_visible_to(user=request.user).select_related("merchant", "product")
    page = Paginator(cards, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = [_card_by_the_clock(card) for card in page.object_list]
    entitled = cards_entitled(card_ids=[card.pk for card in page.object_list])
    for card in page.object_list:
        card.default_reasons = _default_reasons(card, entitled=card.pk in entitled)
        card.notice = _merchant_notice(card, entitled=card.pk in entitled)
    notifications = notifications_of_user(user=request.user).filter(read_at__isnull=True)[:RECENT_NOTIFICATIONS]
    consumer = consumer_of_request(request)
    return render(
        request,
        "refunds/card_list.html",
        {
            "page": page,
            "notifications": notifications,
            "pending": _pending_redemptions(request),
            # Cards offered to this consumer's phone, to accept or decline; and cards they gave away.
            "offers": consumer_selectors.transfers_offered_to(consumer=consumer),
            "given": consumer_selectors.transfers_given_by(consumer=consumer)[:PAGE_SIZE],
        },
    )


@dataclass(frozen=True)
class TopUpLine:
    top_up: TopUp
    refundable: bool  # may be returned in full now (its own cooling-off period)


def _top_up_lines(card: Card) -> list[TopUpLine]:
    """The card's top-ups, newest first, each with whether it may be returned now (``top_up_refund_quote``,
    the rule the refund itself applies)."""
    lines = []
    for top_up in card.top_ups.order_by("-created_at", "pk"):
        try:
            top_up_refund_quote(card=card, top_up=top_up)
        except DomainError:
            refundable = False
        else:
            refundable = True
        lines.append(TopUpLine(top_up=top_up, refundable=refundable))
    return lines


@consumer_only
def card_detail(request, card_id):
    """A card: its terms and money, its services, its contract, its statement (every movement of its
    money with the journal entry's hash), disputes, refunds and complaints."""
    card = _card_by_the_clock(card_of_request(request, card_id))
    redemptions = (
        consumer_selectors.redemptions_visible_to(user=request.user).filter(card=card).select_related("merchant")
    )[:RECENT_REDEMPTIONS]
    refund = Refund.objects.filter(card=card, top_up__isnull=True).first()
    disputes = consumer_selectors.disputes_visible_to(user=request.user).filter(card=card)
    in_dispute = consumer_selectors.card_has_open_dispute(card)
    # At the counter: a QR code and the short code the merchant scans or types (a card that can be served).
    counter_qr = (
        qr_svg(counter_link(request, card), label=_("QR code for the counter"), html_id="counter-qr")
        if card.state in Card.REDEEMABLE
        else None
    )
    return render(
        request,
        "refunds/card_detail.html",
        {
            "card": card,
            "counter_qr": counter_qr,
            # Read through the relation, not complaints' selectors (an app above): the holder's own.
            "complaints": card.complaints.filter(consumer__user=request.user)
            .select_related("merchant")
            .order_by("-created_at", "pk"),
            "payment": card.payment,
            "redemptions": redemptions,
            "refund": refund,
            # While a dispute is open no refund applies (card_in_dispute): the page says why instead.
            "refund_options": list(_refund_options(card).values()) if refund is None and not in_dispute else [],
            "disputes": disputes,
            "in_dispute": in_dispute,
            "statement": holder_statement_lines(card=card),
            "default_reasons": _default_reasons(card) if refund is None else [],
            "notice": _merchant_notice(card),
            "operator_change": _operator_change_notice(card),
            "fee_percent": percent(card.refund_fee_bps),
            "now": clock.now(),
            **_card_life(request, card),
        },
    )


def _card_life(request, card: Card) -> dict:
    """What the card page shows of the card's top-ups and transfers, with their forms."""
    consumer = consumer_of_request(request)
    open_offer = consumer_selectors.card_open_offer(card=card)
    stored_value = card.kind == "stored_value"
    transfers = list(consumer_selectors.card_transfers(card=card, consumer=consumer))
    for transfer in [*transfers, open_offer]:
        if transfer is not None:
            transfer.to_phone_masked = mask_phone(transfer.to_phone)
    return {
        "transfers": transfers,
        "open_offer": open_offer if open_offer is not None and open_offer.from_consumer_id == consumer.pk else None,
        "transfer_form": TransferOfferForm() if card.state == Card.State.ACTIVE and open_offer is None else None,
        "holder_since": consumer_selectors.card_holder_since(card=card),
        "top_ups": _top_up_lines(card) if stored_value else [],
        "top_up_form": TopUpForm() if stored_value and card.state in Card.REDEEMABLE else None,
    }


@consumer_only
@require_POST
def top_up_refund_request(request, top_up_id):
    """Return a top-up within its own cooling-off period (``top_up_refund``)."""
    consumer = consumer_of_request(request)
    refund = attempt(request, lambda: top_up_refund(consumer=consumer, top_up_id=top_up_id))
    if refund is None:
        return redirect("web-consumer-cards")
    messages.success(
        request,
        _("Top-up returned: %(amount)s is on its way back to you; the rest stays on the card.")
        % {"amount": yuan(refund.amount)},
    )
    return redirect(f"{reverse('web-consumer-card', args=[refund.card_id])}#top-up")


@consumer_only
@require_POST
def card_refund(request, card_id):
    """Ask for a refund (``refund_request``). The amount the page showed is checked against the
    quote now, so the consumer never gets a refund other than the one they confirmed."""
    consumer = consumer_of_request(request)
    card = card_of_request(request, card_id)
    reason = request.POST.get("reason", "")
    option = _refund_options(card).get(reason)
    shown = request.POST.get(f"amount_{reason}")
    if option is not None and shown is not None and shown != str(option.amount):
        messages.error(
            request,
            _("The refund for this card is now %(amount)s (fee %(fee)s). Check it and confirm again.")
            % {"amount": yuan(option.amount), "fee": yuan(option.fee)},
        )
        return redirect("web-consumer-card", card_id=card.pk)
    refund = attempt(request, lambda: refund_request(consumer=consumer, card_id=card.pk, reason=reason))
    if refund is not None:
        messages.success(
            request,
            _("Refund booked: %(amount)s is on its way back to you (fee %(fee)s).")
            % {"amount": yuan(refund.amount), "fee": yuan(refund.fee)},
        )
    return redirect("web-consumer-card", card_id=card.pk)


@consumer_only
def card_statement(request, card_id):
    """The holder's statement as a PDF (the same as the API's ``cards/{id}/statement.pdf``)."""
    card = card_of_request(request, card_id)
    response = HttpResponse(holder_statement_pdf(card=card), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="card-statement-{card.pk}.pdf"'
    return response


# --- the merchant's settlement statement (mounted under /m/) ------------------------------------


@merchant_only
def settlement_statement(request, settlement_id):
    """The same PDF as ``GET /api/v1/merchant/settlements/{id}/statement.pdf``, for the session login."""
    try:
        settlement = merchant_settlement_get(merchant=merchant_of_request(request), settlement_id=settlement_id)
    except NotFound as exc:
        raise Http404 from exc
    response = HttpResponse(settlement_statement_pdf(settlement=settlement), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="statement-{settlement.date.isoformat()}.pdf"'
    return response
