"""The consumer's pages: browse merchants, buy and pay a card, follow one's cards, confirm services,
ask for refunds (the complaint pages are ``complaints.web``'s; a card's page lists its complaints).

Every page reads through the same selectors and writes through the same services as the API
(``consumers.api``, ``refunds.api``); the forms here only carry what a
person picks into the services' arguments, and ``core.web.attempt`` shows the services' domain errors.
The few reads no API has (the merchant directory) are plain filters on the models, with no rule in
them; the unread notices shown above the cards come from ``notifications.selectors`` (the notices
page itself is the notifications app's).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_fsm import can_proceed

from consumers import selectors, services
from consumers.contract import card_contract_pdf
from consumers.models import Card, Consumer, Redemption
from core import clock
from core.errors import DomainError, NotFound
from core.formatting import percent, yuan
from core.web import attempt, form_idempotency_key, role_required, signup_page
from merchants.models import Merchant, Product
from merchants.registry import DISTRICTS, district_name
from merchants.selectors import products_on_sale
from merchants.selectors_filing import merchant_filing_status
from notifications.selectors import notifications_of_user
from refunds.models import Refund
from refunds.selectors import cards_entitled, merchant_default_explained, merchant_default_reasons
from refunds.services import CONSUMER_REASONS, REFUNDABLE, refund_quote, refund_request

consumer_only = role_required("consumer")

PAGE_SIZE = 30
RECENT_NOTIFICATIONS = 10
RECENT_REDEMPTIONS = 30


# --- helpers ------------------------------------------------------------------------------------


def _consumer(request) -> Consumer:
    try:
        return selectors.consumer_of_user(user=request.user)
    except NotFound as exc:  # a consumer login without a profile has nothing to show
        raise Http404 from exc


def _card(request, card_id) -> Card:
    """The request's consumer's own card; anyone else's is "not found", as in the API."""
    try:
        return selectors.card_get(user=request.user, card_id=card_id)
    except NotFound as exc:
        raise Http404 from exc


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _next_url(request, default: str) -> str:
    """Where a form asked to go back to (a path on this site only), else ``default``."""
    wanted = request.POST.get("next") or request.GET.get("next")
    if wanted and url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}):
        return wanted
    return default


def _district_label(code: str) -> str:
    try:
        return district_name(code, get_language() or "zh-hans")
    except KeyError:
        return code


def _page(request, items, size: int = PAGE_SIZE):
    return Paginator(items, size).get_page(request.GET.get("page"))


# --- merchants and products ---------------------------------------------------------------------


class MerchantFilterForm(forms.Form):
    district = forms.ChoiceField(label=gettext_lazy("District"), required=False)
    category = forms.ChoiceField(label=gettext_lazy("Category"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["district"].choices = [("", _("All districts"))] + [
            (code, _district_label(code)) for code in DISTRICTS
        ]
        self.fields["category"].choices = [("", _("All categories")), *Merchant.Category.choices]


@consumer_only
def merchant_list(request):
    """Merchants trading now (``active``), narrowed by district and category."""
    form = MerchantFilterForm(request.GET or None)
    merchants = Merchant.objects.filter(status=Merchant.Status.ACTIVE).order_by("name", "pk")
    if form.is_valid():
        if district := form.cleaned_data["district"]:
            merchants = merchants.filter(district=district)
        if category := form.cleaned_data["category"]:
            merchants = merchants.filter(category=category)
    page = _page(request, merchants)
    for merchant in page:
        merchant.district_label = _district_label(merchant.district)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "consumers/merchant_list.html", {"form": form, "page": page, "query": query.urlencode()})


@dataclass(frozen=True)
class ProductOffer:
    product: Product
    purchase_key: str  # the buy form's idempotency key: a double submit buys one card
    fee_percent: str


@consumer_only
def merchant_detail(request, merchant_id):
    """A merchant and its products on sale, under the regulator's warning when it has one."""
    try:
        merchant = Merchant.objects.get(pk=merchant_id)
    except Merchant.DoesNotExist as exc:
        raise Http404 from exc
    merchant.district_label = _district_label(merchant.district)
    offers = [
        ProductOffer(product=product, purchase_key=uuid.uuid4().hex, fee_percent=percent(product.refund_fee_bps))
        for product in products_on_sale(merchant_id=merchant.pk)
    ]
    return render(
        request,
        "consumers/merchant_detail.html",
        {
            "merchant": merchant,
            "offers": offers,
            "cooling_off_days": settings.COOLING_OFF_DAYS,
            "filing_status": merchant_filing_status(merchant=merchant),
        },
    )


class PurchaseForm(forms.Form):
    purchase_key = forms.RegexField(regex=r"^[0-9a-f]{32}$", required=False)


@consumer_only
@require_POST
def product_buy(request, product_id):
    """Buy a card (``card_purchase``): it waits for payment on the payment page."""
    consumer = _consumer(request)
    form = PurchaseForm(request.POST)
    key = form.cleaned_data["purchase_key"] if form.is_valid() else ""
    idempotency_key = form_idempotency_key(request, form="purchase", token=key)
    card = attempt(
        request,
        lambda: services.card_purchase(consumer=consumer, product_id=product_id, idempotency_key=idempotency_key),
    )
    if card is None:
        return redirect(_next_url(request, reverse("web-consumer-merchants")))
    return redirect("web-consumer-card-pay", card_id=card.pk)


# --- payment ------------------------------------------------------------------------------------


@consumer_only
def card_pay(request, card_id):
    """The payment of a card just bought: the sandbox bank's buttons under the local gateway, or
    the Stripe PaymentIntent's client secret; the status part refreshes itself until decided."""
    card = _card(request, card_id)
    template = "consumers/_payment_status.html" if _is_htmx(request) else "consumers/card_pay.html"
    return render(request, template, {"card": card, "payment": card.payment})


@consumer_only
@require_POST
def payment_simulate(request, payment_id):
    """The local sandbox bank settles the payment as the consumer says (``payment_simulate``)."""
    consumer = _consumer(request)
    outcome = request.POST.get("outcome", "")  # the service refuses anything but succeeded/failed
    card = attempt(
        request, lambda: services.payment_simulate(consumer=consumer, payment_id=payment_id, outcome=outcome)
    )
    if card is None:
        return redirect(_next_url(request, reverse("web-consumer-cards")))
    if card.state == Card.State.CANCELLED:
        messages.error(request, _("The payment failed, so the card was cancelled. Nothing was charged."))
    else:
        ends = clock.local(card.cooling_off_ends_at).strftime("%Y-%m-%d %H:%M")
        messages.success(
            request,
            _(
                "Paid. Your money is held in escrow, and until %(ends)s (Beijing time) you can return the card "
                "for a full refund as long as no service was received."
            )
            % {"ends": ends},
        )
    return redirect("web-consumer-card", card_id=card.pk)


# --- my cards -----------------------------------------------------------------------------------


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


def _pending_redemptions(request):
    """Services the merchant started that wait for this consumer's answer and can still be confirmed."""
    return (
        selectors.redemptions_visible_to(user=request.user)
        .filter(state=Redemption.State.AWAITING_CONFIRMATION, expires_at__gt=clock.now())
        .select_related("card__product", "merchant")
    )


@consumer_only
def card_list(request):
    """Every card of the consumer, the merchants' notices to them, and services waiting for confirmation."""
    _consumer(request)
    cards = selectors.cards_visible_to(user=request.user).select_related("merchant", "product")
    page = _page(request, cards)
    page.object_list = [_card_by_the_clock(card) for card in page.object_list]
    entitled = cards_entitled(card_ids=[card.pk for card in page.object_list])
    for card in page.object_list:
        card.default_reasons = _default_reasons(card, entitled=card.pk in entitled)
    notifications = notifications_of_user(user=request.user).filter(read_at__isnull=True)[:RECENT_NOTIFICATIONS]
    return render(
        request,
        "consumers/card_list.html",
        {"page": page, "notifications": notifications, "pending": _pending_redemptions(request)},
    )


@consumer_only
def card_detail(request, card_id):
    """A card: its terms and money, its services, its contract, refunds and complaints."""
    card = _card_by_the_clock(_card(request, card_id))
    redemptions = (selectors.redemptions_visible_to(user=request.user).filter(card=card).select_related("merchant"))[
        :RECENT_REDEMPTIONS
    ]
    refund = Refund.objects.filter(card=card).first()
    return render(
        request,
        "consumers/card_detail.html",
        {
            "card": card,
            # Read through the relation, not complaints' selectors (an app above): the holder's own.
            "complaints": card.complaints.filter(consumer__user=request.user)
            .select_related("merchant")
            .order_by("-created_at", "pk"),
            "payment": card.payment,
            "redemptions": redemptions,
            "refund": refund,
            "refund_options": list(_refund_options(card).values()) if refund is None else [],
            "default_reasons": _default_reasons(card) if refund is None else [],
            "fee_percent": percent(card.refund_fee_bps),
            "now": clock.now(),
        },
    )


@consumer_only
def card_contract(request, card_id):
    """The purchase contract and receipt (the same PDF as the API's ``contract.pdf``)."""
    card = _card(request, card_id)
    response = HttpResponse(card_contract_pdf(card=card), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="contract-{card.pk}.pdf"'
    return response


@consumer_only
@require_POST
def card_refund(request, card_id):
    """Ask for a refund (``refund_request``). The amount the page showed is checked against the
    quote now, so the consumer never gets a refund other than the one they confirmed."""
    consumer = _consumer(request)
    card = _card(request, card_id)
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


# --- services to confirm ------------------------------------------------------------------------


@consumer_only
def redemptions(request):
    """Services waiting for confirmation (refreshing themselves) and the latest decided ones."""
    recent = (
        selectors.redemptions_visible_to(user=request.user)
        .exclude(state=Redemption.State.AWAITING_CONFIRMATION)
        .select_related("card__product", "merchant")
    )[:RECENT_REDEMPTIONS]
    return render(request, "consumers/redemptions.html", {"pending": _pending_redemptions(request), "recent": recent})


@consumer_only
def redemptions_pending(request):
    """The htmx fragment the pages poll: services waiting for confirmation, with their buttons."""
    return render(request, "consumers/_pending_redemptions.html", {"pending": _pending_redemptions(request)})


def _redemption_answer(request, redemption_id, *, confirm: bool):
    consumer = _consumer(request)
    if confirm:
        redemption = attempt(
            request, lambda: services.redemption_confirm(consumer=consumer, redemption_id=redemption_id)
        )
        if redemption is not None:
            messages.success(
                request,
                _("Service confirmed: %(amount)s released from escrow to the merchant.")
                % {"amount": yuan(redemption.released)},
            )
    else:
        redemption = attempt(
            request, lambda: services.redemption_reject(consumer=consumer, redemption_id=redemption_id)
        )
        if redemption is not None:
            messages.success(request, _("Service rejected: no money was released."))
    if _is_htmx(request):
        # The answer is shown inside the fragment; the cards on the page refresh on "cards-changed".
        notes = list(messages.get_messages(request))
        response = render(
            request,
            "consumers/_pending_redemptions.html",
            {"pending": _pending_redemptions(request), "notes": notes},
        )
        response["HX-Trigger"] = "cards-changed"
        return response
    return redirect(_next_url(request, reverse("web-consumer-cards")))


@consumer_only
@require_POST
def redemption_confirm(request, redemption_id):
    return _redemption_answer(request, redemption_id, confirm=True)


@consumer_only
@require_POST
def redemption_reject(request, redemption_id):
    return _redemption_answer(request, redemption_id, confirm=False)


# --- sign-up (mounted at /signup/consumer/) -----------------------------------------------------


class ConsumerSignupForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=150)
    password = forms.CharField(label=gettext_lazy("Password"), widget=forms.PasswordInput, min_length=8)
    display_name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    phone = forms.CharField(label=gettext_lazy("Mobile phone"), max_length=20)


def signup(request):
    """A new consumer signs up (``consumer_register``) and is logged in."""
    return signup_page(request, role="consumer", form_class=ConsumerSignupForm, register=services.consumer_register)
