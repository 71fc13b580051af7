"""The pages of cards and their services: the consumer's (browse merchants, buy and pay a card,
confirm or reject services) and the merchant's (start a service on a card it sold, follow the
answers live).

The consumer's list of cards, a card's page and its refund form show what refunds the card may
take, so they are the refunds app's pages (``refunds.web``: a page that shows several apps' data
lives in the highest of them); the complaint pages are ``complaints.web``'s. The merchant's
redemption pages list the cards it sold and start services through ``consumers.services``, so they
are here rather than in ``merchants.web`` (the merchant's app is below the cards); their URLs and
names stay the merchant's (``/m/redemptions/``, ``web-merchant-redemptions``).

Every page reads through the same selectors and writes through the same services as the API
(``consumers.api``); the forms here only carry what a person picks or types into the services'
arguments, and ``core.web.attempt`` shows the services' domain errors. The few reads no API has
(the merchant directory) are plain filters on the models, with no rule in them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from consumers import selectors, services, services_top_ups, services_transfers
from consumers.contract import card_contract_pdf, top_up_annex_pdf
from consumers.errors import CardNotRedeemable
from consumers.models import Card, Consumer, Dispute, Redemption, TopUp
from core import clock
from core.errors import NotFound
from core.formatting import beijing_date, beijing_datetime, percent, yuan
from core.rules import rule
from core.web import OnceForm, attempt, form_idempotency_key, next_url, role_required, signup_page
from merchants.models import Merchant, Product
from merchants.registry import DISTRICTS, district_name
from merchants.selectors import merchant_filing_status, products_on_sale
from merchants.web import YuanField, merchant_of_request

consumer_only = role_required("consumer")
merchant_only = role_required("merchant")

PAGE_SIZE = 30
RECENT_REDEMPTIONS = 30
MERCHANT_PAGE_SIZE = 25
MERCHANT_RECENT_REDEMPTIONS = 20
# A card id is a UUID; the contract's QR code carries it, alone or inside longer text.
CARD_ID = selectors.CARD_ID


# --- helpers ------------------------------------------------------------------------------------


def consumer_of_request(request) -> Consumer:
    """The logged-in consumer's profile (404 without one); the consumer pages of every app take it here."""
    try:
        return selectors.consumer_of_user(user=request.user)
    except NotFound as exc:  # a consumer login without a profile has nothing to show
        raise Http404 from exc


def card_of_request(request, card_id) -> Card:
    """The request's consumer's own card; anyone else's is "not found", as in the API."""
    try:
        return selectors.card_get(user=request.user, card_id=card_id)
    except NotFound as exc:
        raise Http404 from exc


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true"


def _district_label(code: str) -> str:
    try:
        return district_name(code, get_language() or "zh-hans")
    except KeyError:
        return code


def _page(request, items, size: int = PAGE_SIZE):
    return Paginator(items, size).get_page(request.GET.get("page"))


def _pending_redemptions(request):
    """Services the merchant started that wait for this consumer's answer and can still be confirmed."""
    return selectors.redemptions_awaiting_answer(user=request.user).select_related("card__product", "merchant")


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
    cooling_off = rule("cooling_off_days")
    return render(
        request,
        "consumers/merchant_detail.html",
        {
            "merchant": merchant,
            "offers": offers,
            "cooling_off_days": cooling_off.value,
            "cooling_off_basis": cooling_off.basis(get_language()),
            "filing_status": merchant_filing_status(merchant=merchant),
        },
    )


class PurchaseForm(forms.Form):
    purchase_key = forms.RegexField(regex=r"^[0-9a-f]{32}$", required=False)


@consumer_only
@require_POST
def product_buy(request, product_id):
    """Buy a card (``card_purchase``): it waits for payment on the payment page."""
    consumer = consumer_of_request(request)
    form = PurchaseForm(request.POST)
    key = form.cleaned_data["purchase_key"] if form.is_valid() else ""
    idempotency_key = form_idempotency_key(request, form="purchase", token=key)
    card = attempt(
        request,
        lambda: services.card_purchase(consumer=consumer, product_id=product_id, idempotency_key=idempotency_key),
    )
    if card is None:
        return redirect(next_url(request, reverse("web-consumer-merchants")))
    return redirect("web-consumer-card-pay", card_id=card.pk)


# --- payment ------------------------------------------------------------------------------------


@consumer_only
def card_pay(request, card_id):
    """The payment of a card just bought: the sandbox bank's buttons under the local gateway, or
    the Stripe PaymentIntent's client secret; the status part refreshes itself until decided."""
    card = card_of_request(request, card_id)
    template = "consumers/_payment_status.html" if _is_htmx(request) else "consumers/card_pay.html"
    return render(request, template, {"card": card, "payment": card.payment})


@consumer_only
@require_POST
def payment_simulate(request, payment_id):
    """The local sandbox bank settles the payment as the consumer says (``payment_simulate``)."""
    consumer = consumer_of_request(request)
    outcome = request.POST.get("outcome", "")  # the service refuses anything but succeeded/failed
    card = attempt(
        request, lambda: services.payment_simulate(consumer=consumer, payment_id=payment_id, outcome=outcome)
    )
    if card is None:
        return redirect(next_url(request, reverse("web-consumer-cards")))
    if card.state == Card.State.CANCELLED:
        messages.error(request, _("The payment failed, so the card was cancelled. Nothing was charged."))
    else:
        ends = beijing_datetime(card.cooling_off_ends_at)
        messages.success(
            request,
            _(
                "Paid. Your money is held in escrow, and until %(ends)s (Beijing time) you can return the card "
                "for a full refund as long as no service was received."
            )
            % {"ends": ends},
        )
    return redirect("web-consumer-card", card_id=card.pk)


# --- a card's contract (its page, list and refund form are ``refunds.web``'s) ------------------


@consumer_only
def card_contract(request, card_id):
    """The purchase contract and receipt (the same PDF as the API's ``contract.pdf``)."""
    card = card_of_request(request, card_id)
    response = HttpResponse(card_contract_pdf(card=card), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="contract-{card.pk}.pdf"'
    return response


# --- a card's transfers (its page and the card list show them: ``refunds.web``) ----------------------


class TransferOfferForm(OnceForm):
    to_phone = forms.RegexField(
        label=gettext_lazy("Their mobile phone number"),
        regex=r"^\+?[0-9][0-9 -]{5,18}$",
        max_length=20,
        help_text=gettext_lazy("The person accepts in the app with the account signed up with this number."),
        error_messages={"invalid": gettext_lazy("Enter a mobile phone number.")},
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )


@consumer_only
@require_POST
def card_transfer_offer(request, card_id):
    """The holder offers the card to a phone number (``card_transfer_offer``)."""
    consumer = consumer_of_request(request)
    form = TransferOfferForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(f"{reverse('web-consumer-card', args=[card_id])}#transfer")
    attempt(
        request,
        lambda: services_transfers.card_transfer_offer(
            consumer=consumer,
            card_id=card_id,
            to_phone=form.cleaned_data["to_phone"],
            idempotency_key=form.idempotency_key(request, form="transfer"),
        ),
        success=_("Offered. The card stays yours until they accept; you can withdraw the offer until then."),
    )
    return redirect(f"{reverse('web-consumer-card', args=[card_id])}#transfer")


@consumer_only
@require_POST
def card_transfer_cancel(request, transfer_id):
    consumer = consumer_of_request(request)
    transfer = attempt(
        request,
        lambda: services_transfers.card_transfer_cancel(consumer=consumer, transfer_id=transfer_id),
        success=_("Offer withdrawn: the card stays yours."),
    )
    if transfer is None:
        return redirect(next_url(request, reverse("web-consumer-cards")))
    return redirect(f"{reverse('web-consumer-card', args=[transfer.card_id])}#transfer")


@consumer_only
@require_POST
def card_transfer_accept(request, transfer_id):
    """The consumer with the offer's phone takes the card; its page opens."""
    consumer = consumer_of_request(request)
    transfer = attempt(
        request,
        lambda: services_transfers.card_transfer_accept(consumer=consumer, transfer_id=transfer_id),
        success=_("The card is yours now. Its money stays in escrow and its contract was reissued in your name."),
    )
    if transfer is None:
        return redirect("web-consumer-cards")
    return redirect("web-consumer-card", card_id=transfer.card_id)


@consumer_only
@require_POST
def card_transfer_decline(request, transfer_id):
    consumer = consumer_of_request(request)
    attempt(
        request,
        lambda: services_transfers.card_transfer_decline(consumer=consumer, transfer_id=transfer_id),
        success=_("Declined: the card stays with the person who offered it."),
    )
    return redirect("web-consumer-cards")


@consumer_only
def card_transfer_contract(request, transfer_id):
    """The giver's contract as it stood until the card was transferred (the API's same PDF)."""
    try:
        transfer = selectors.transfer_given_get(consumer=consumer_of_request(request), transfer_id=transfer_id)
    except NotFound as exc:
        raise Http404 from exc
    response = HttpResponse(card_contract_pdf(card=transfer.card, until=transfer), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="contract-{transfer.card_id}-until-transfer.pdf"'
    return response


# --- a card's top-ups -----------------------------------------------------------------------------


class TopUpForm(OnceForm):
    amount = YuanField(
        label=gettext_lazy("Amount (yuan)"),
        help_text=gettext_lazy(
            "Adds face value at this card's own rate. It can be returned in full until its own cooling-off "
            "period ends, if you receive no service in the meantime."
        ),
    )


def top_up_of_request(request, top_up_id) -> TopUp:
    """A top-up of one of the request's consumer's cards; anyone else's is "not found"."""
    try:
        return selectors.top_up_get(user=request.user, top_up_id=top_up_id)
    except NotFound as exc:
        raise Http404 from exc


@consumer_only
@require_POST
def card_top_up(request, card_id):
    """Top up a stored-value card (``top_up_request``): it waits for payment on its payment page."""
    consumer = consumer_of_request(request)
    form = TopUpForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(f"{reverse('web-consumer-card', args=[card_id])}#top-up")
    top_up = attempt(
        request,
        lambda: services_top_ups.top_up_request(
            consumer=consumer,
            card_id=card_id,
            amount=form.cleaned_data["amount"],
            idempotency_key=form.idempotency_key(request, form="top-up"),
        ),
    )
    if top_up is None:
        return redirect(f"{reverse('web-consumer-card', args=[card_id])}#top-up")
    return redirect("web-consumer-top-up-pay", top_up_id=top_up.pk)


@consumer_only
def top_up_pay(request, top_up_id):
    """A top-up's payment: the sandbox bank's buttons, or Stripe's client secret."""
    top_up = top_up_of_request(request, top_up_id)
    return render(request, "consumers/top_up_pay.html", {"top_up": top_up, "card": top_up.card})


@consumer_only
@require_POST
def top_up_simulate(request, top_up_id):
    """The sandbox bank settles the top-up's payment (``payment_simulate``: its id is the payment's)."""
    consumer = consumer_of_request(request)
    outcome = request.POST.get("outcome", "")
    card = attempt(request, lambda: services.payment_simulate(consumer=consumer, payment_id=top_up_id, outcome=outcome))
    if card is None:
        return redirect("web-consumer-top-up-pay", top_up_id=top_up_id)
    top_up = top_up_of_request(request, top_up_id)
    if top_up.state == TopUp.State.CANCELLED:
        messages.error(request, _("The top-up was not paid, so nothing was charged."))
    else:
        messages.success(
            request,
            _(
                "Topped up: %(amount)s is held in escrow and %(face)s added to the balance. Until %(ends)s "
                "(Beijing time) you can have this top-up back in full if you receive no service meanwhile."
            )
            % {
                "amount": yuan(top_up.amount),
                "face": yuan(top_up.face_value),
                "ends": beijing_datetime(top_up.cooling_off_ends_at),
            },
        )
    return redirect(f"{reverse('web-consumer-card', args=[card.pk])}#top-up")


@consumer_only
def top_up_annex(request, top_up_id):
    """The top-up's contract annex and receipt (the API's same PDF)."""
    top_up = top_up_of_request(request, top_up_id)
    response = HttpResponse(top_up_annex_pdf(top_up=top_up), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="top-up-{top_up.pk}.pdf"'
    return response


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
    consumer = consumer_of_request(request)
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
    return redirect(next_url(request, reverse("web-consumer-cards")))


@consumer_only
@require_POST
def redemption_confirm(request, redemption_id):
    return _redemption_answer(request, redemption_id, confirm=True)


@consumer_only
@require_POST
def redemption_reject(request, redemption_id):
    return _redemption_answer(request, redemption_id, confirm=False)


@consumer_only
@require_POST
def card_operator_consent(request, card_id):
    """The holder's answer to a change of its merchant's operator (``operator_consent_give``):
    ``consent=1`` continues with the new operator, anything else asks for the refund on the day."""
    consumer = consumer_of_request(request)
    card = card_of_request(request, card_id)
    consent = request.POST.get("consent") == "1"
    answer = attempt(
        request, lambda: services.operator_consent_give(consumer=consumer, card_id=card.pk, consent=consent)
    )
    if answer is not None:
        day = beijing_date(answer.operator_change.changes_on)
        if answer.consent:
            messages.success(
                request, _("Noted: this card continues with the new operator from %(day)s.") % {"day": day}
            )
        else:
            messages.success(
                request,
                _("Noted: everything left on this card is refunded to you in full on %(day)s.") % {"day": day},
            )
    return redirect("web-consumer-card", card_id=card.pk)


# --- the merchant's services on the cards it sold (mounted under /m/) ----------------------------


class RedemptionStartForm(OnceForm):
    card = forms.CharField(
        label=gettext_lazy("Card id or QR code text"),
        max_length=500,
        help_text=gettext_lazy("The id the consumer shows, or the text of the QR code on their contract."),
    )
    amount = YuanField(
        label=gettext_lazy("Amount (yuan)"),
        required=False,
        help_text=gettext_lazy("Stored-value cards only: the face value of the service."),
    )

    def __init__(self, *args: Any, merchant: Merchant | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.merchant = merchant

    def clean_card(self) -> str:
        text = self.cleaned_data["card"]
        found = CARD_ID.search(text)
        if found is not None:
            return found.group(0).replace("-", "").lower()
        if self.merchant is not None and selectors.counter_code_normalize(text) is not None:
            # A counter code (typed, or the card page's QR text) names the card too.
            try:
                return selectors.card_for_counter(merchant=self.merchant, code_or_id=text).pk.hex
            except NotFound as exc:
                raise forms.ValidationError(_("None of the cards you sold has this code.")) from exc
            except CardNotRedeemable as exc:
                raise forms.ValidationError(str(exc.detail)) from exc
        raise forms.ValidationError(_("No card id in this text."))


class CounterLookupForm(forms.Form):
    """What the merchant types or scans at the counter: the holder's counter code, or a card's QR text."""

    code = forms.CharField(
        label=gettext_lazy("Counter code"),
        max_length=500,
        help_text=gettext_lazy("The 8 characters under the QR code on the holder's card page, e.g. K7QX-3MPA."),
        widget=forms.TextInput(attrs={"autocapitalize": "characters", "autocomplete": "off", "spellcheck": "false"}),
    )


def htmx_login_redirect(view):
    """A polled fragment whose session ended tells htmx to load the login page instead of swapping it in."""

    @wraps(view)
    def wrapper(request, *args: Any, **kwargs: Any):
        if request.headers.get("HX-Request") and not request.user.is_authenticated:
            response = HttpResponse(status=204)
            response["HX-Redirect"] = reverse("web-login")
            return response
        return view(request, *args, **kwargs)

    return wrapper


def _live_context(request) -> dict:
    mine = selectors.redemptions_visible_to(user=request.user).select_related("card__product")
    now = clock.now()
    pending = list(mine.filter(state=Redemption.State.AWAITING_CONFIRMATION))
    for redemption in pending:
        redemption.lapsed = redemption.expires_at <= now
    recent = list(mine.exclude(state=Redemption.State.AWAITING_CONFIRMATION)[:MERCHANT_RECENT_REDEMPTIONS])
    # A rejected one links to its dispute, or to the "contest" form while it may still be contested.
    disputed = dict(
        Dispute.objects.filter(
            redemption__in=[r.pk for r in recent if r.state == Redemption.State.REJECTED]
        ).values_list("redemption_id", "pk")
    )
    for redemption in recent:
        redemption.dispute_pk = disputed.get(redemption.pk)
        redemption.contestable = redemption.dispute_pk is None and bool(
            selectors.redemption_contestable_until(redemption)
        )
    return {"pending": pending, "recent": recent}


def _merchant_redemptions(
    request,
    *,
    merchant: Merchant,
    form: RedemptionStartForm,
    lookup: CounterLookupForm | None = None,
    status: int = 200,
):
    cards = _page(
        request,
        selectors.cards_visible_to(user=request.user).select_related("product"),
        size=MERCHANT_PAGE_SIZE,
    )
    for card in cards:
        card.redeemable = card.state in services.REDEEMABLE  # offer "start a service" where it can
    context = {
        "merchant": merchant,
        "form": form,
        "lookup": lookup or CounterLookupForm(),
        "cards": cards,
        **_live_context(request),
    }
    return render(request, "consumers/merchant_redemptions.html", context, status=status)


def counter_link(request, card: Card) -> str:
    """What the card page's QR code says: the merchant's counter page with the card's code. A
    phone's own camera app opens it; our scanner and the start form read the code out of it."""
    query = urlencode({"code": card.counter_code_display})
    return request.build_absolute_uri(f"{reverse('web-merchant-counter')}?{query}")


def _counter_confirm(request, *, merchant: Merchant, card: Card, form: RedemptionStartForm, status: int = 200):
    context = {
        "merchant": merchant,
        "card": card,
        "holder_name": card.consumer.display_name,
        "holder_phone": selectors.phone_tail(card.consumer.phone),
        "form": form,
    }
    return render(request, "consumers/merchant_counter_confirm.html", context, status=status)


@merchant_only
def merchant_redemptions(request):
    initial = {"card": request.GET["card"]} if request.GET.get("card") else None
    return _merchant_redemptions(
        request, merchant=merchant_of_request(request), form=RedemptionStartForm(initial=initial)
    )


@merchant_only
def merchant_counter(request):
    """At the counter: the card behind a counter code (typed, or scanned from the holder's card
    page), its holder and what is left on it, before the merchant starts a service. Works without
    JavaScript: this page is the lookup form's GET; its "start" button posts the start form."""
    merchant = merchant_of_request(request)
    lookup = CounterLookupForm(request.GET)
    if not lookup.is_valid():
        if "code" not in request.GET:
            return redirect(f"{reverse('web-merchant-redemptions')}#counter")
        return _merchant_redemptions(request, merchant=merchant, form=RedemptionStartForm(), lookup=lookup)
    try:
        card = selectors.card_for_counter(merchant=merchant, code_or_id=lookup.cleaned_data["code"])
    except NotFound:
        lookup.add_error("code", _("None of the cards you sold has this code."))
        return _merchant_redemptions(request, merchant=merchant, form=RedemptionStartForm(), lookup=lookup, status=404)
    except CardNotRedeemable as exc:
        lookup.add_error("code", str(exc.detail))
        return _merchant_redemptions(request, merchant=merchant, form=RedemptionStartForm(), lookup=lookup)
    form = RedemptionStartForm(initial={"card": card.pk.hex}, merchant=merchant)
    form.fields["card"].widget = forms.HiddenInput()
    if card.kind != Product.Kind.STORED_VALUE:
        del form.fields["amount"]
    return _counter_confirm(request, merchant=merchant, card=card, form=form)


@require_POST
@merchant_only
def merchant_redemption_start(request):
    merchant = merchant_of_request(request)
    form = RedemptionStartForm(request.POST, merchant=merchant)
    if form.is_valid():

        def start() -> Redemption:
            try:
                return services.redemption_request(
                    merchant=merchant,
                    card_id=form.cleaned_data["card"],
                    amount=form.cleaned_data["amount"],
                    idempotency_key=form.idempotency_key(request, form="redemption"),
                )
            except NotFound as exc:  # "not found" alike for a missing card and another shop's card
                message = _("None of the cards you sold has this id.")
                raise NotFound(message, errors={"card": [message]}) from exc

        started = attempt(request, start, success=_("Service started: waiting for the consumer to confirm."), form=form)
        if started is not None:
            return redirect("web-merchant-redemptions")
        if request.POST.get("counter"):  # started from the counter page: show the holder's card again
            try:
                card = selectors.card_for_counter(merchant=merchant, code_or_id=form.cleaned_data["card"])
            except (NotFound, CardNotRedeemable):
                pass
            else:
                form.fields["card"].widget = forms.HiddenInput()
                if card.kind != Product.Kind.STORED_VALUE:
                    del form.fields["amount"]
                return _counter_confirm(request, merchant=merchant, card=card, form=form)
    return _merchant_redemptions(request, merchant=merchant, form=form)


@htmx_login_redirect
@merchant_only
def merchant_redemptions_live(request):
    """The polled fragment: pending redemptions with their countdowns, and the recently decided."""
    return render(request, "consumers/_merchant_redemptions_live.html", _live_context(request))


# --- sign-up (mounted at /signup/consumer/) -----------------------------------------------------


class ConsumerSignupForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=150)
    password = forms.CharField(label=gettext_lazy("Password"), widget=forms.PasswordInput, min_length=8)
    display_name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    phone = forms.CharField(label=gettext_lazy("Mobile phone"), max_length=20)


def signup(request):
    """A new consumer signs up (``consumer_register``) and is logged in."""
    return signup_page(request, role="consumer", form_class=ConsumerSignupForm, register=services.consumer_register)
