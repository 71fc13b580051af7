"""The merchant's pages: its shop, settlements, closure and relocation notices, a change of operator.

The pages that show the cards it sold or their refunds live in the apps of that data, with their
URLs and names under ``/m/`` unchanged: the redemption pages (start a service on a card, follow the
answers) are ``consumers.web``'s, the settlement statement PDF (it lists the refunds) is
``refunds.web``'s, and the complaint pages are ``complaints.web``'s. ``YuanField`` is used by
``consumers.web`` too.

Every page reads through the same selectors and writes through the same services as the API
(``merchants.api``); the forms here only turn what a person types (yuan with up to two decimals)
into the services' arguments. Errors come back from the services as domain errors and are shown by
``core.web.attempt``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import clock
from core.errors import NotFound
from core.fields import MAX_FEN
from core.formatting import beijing_date, percent
from core.web import OnceForm, attempt, role_required, signup_page
from merchants import selectors
from merchants.models import Filing, Merchant, OperatorChange, Product
from merchants.registry import DISTRICTS, district_name
from merchants.selectors import (
    filing_basis,
    filing_document_get,
    filing_documents,
    merchant_filing_current,
    merchant_filing_status,
)
from merchants.services import merchants as services
from merchants.services.closure import closure_earliest_day, closure_notice_rule, merchant_closure_announce
from merchants.services.filing import DOCUMENT_SUFFIXES, filing_submit
from merchants.services.operator_change import operator_change_notice_rule, operator_change_request
from merchants.services.relocation import (
    merchant_relocation_announce,
    merchant_relocation_cancel,
    relocation_earliest_day,
    relocation_notice_rule,
    relocation_refund_rule,
)

merchant_only = role_required("merchant")

PAGE_SIZE = 25


# --- forms: typed input → service arguments ------------------------------------------------------


class YuanField(forms.DecimalField):
    """An amount typed in yuan (``12.50``) and returned as integer fen (``1250``), never a float."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", Decimal("0.01"))
        kwargs.setdefault("max_value", Decimal(MAX_FEN) / 100)
        super().__init__(max_digits=16, decimal_places=2, **kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "step": "0.01"})

    def clean(self, value: Any) -> int | None:
        amount = super().clean(value)
        return None if amount is None else int(amount * 100)  # exact: at most two decimal places


class PercentField(forms.DecimalField):
    """A rate typed as a percentage (``5`` or ``5.5``) and returned as integer basis points (``500``,
    ``550``), the unit the rules and the ledger use; never a float."""

    def __init__(self, *, max_percent: int, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_value", Decimal(max_percent))
        super().__init__(max_digits=5, decimal_places=2, **kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "step": "0.01"})

    def clean(self, value: Any) -> int | None:
        rate = super().clean(value)
        return None if rate is None else int(rate * 100)  # exact: at most two decimal places


class ProductForm(OnceForm):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=Product.Kind.choices)
    price = YuanField(label=gettext_lazy("Price (yuan)"), help_text=gettext_lazy("The money the consumer pays."))
    face_value = YuanField(
        label=gettext_lazy("Face value (yuan)"),
        required=False,
        help_text=gettext_lazy("Stored-value cards: the value of service the card holds, at least the price."),
    )
    unit_price = YuanField(
        label=gettext_lazy("Unit price (yuan)"),
        required=False,
        help_text=gettext_lazy("Stored-value cards: the face value of the cheapest single service."),
    )
    sessions = forms.IntegerField(
        label=gettext_lazy("Sessions"),
        required=False,
        min_value=1,
        max_value=100_000,
        help_text=gettext_lazy("Session packs."),
    )
    days = forms.IntegerField(
        label=gettext_lazy("Days"),
        required=False,
        min_value=1,
        max_value=36_600,
        help_text=gettext_lazy("Period passes."),
    )
    refund_fee_bps = PercentField(
        label=gettext_lazy("Refund handling fee (%)"),
        max_percent=20,
        initial=0,
        help_text=gettext_lazy(
            "On a voluntary refund after cooling-off: a share of the money still in escrow, such as 5 or 5.5 "
            "(per cent, at most 20)."
        ),
    )


class ClosureForm(forms.Form):
    closes_on = forms.DateField(
        label=gettext_lazy("Closing day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        notice = closure_notice_rule()
        self.fields["closes_on"].help_text = _(
            "At least %(days)s days from today: %(earliest)s (Beijing time) or later."
        ) % {
            "days": notice.value,
            "earliest": beijing_date(closure_earliest_day(notice=notice)),
        }


# --- helpers ------------------------------------------------------------------------------------


def merchant_of_request(request) -> Merchant:
    """The logged-in merchant's profile; a merchant user without one has no pages (404). The pages
    of every app that serve merchants take it from here."""
    try:
        return selectors.merchant_of_user(user=request.user)
    except NotFound as exc:
        raise Http404 from exc


def _page(request, items):
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


# --- (1) the shop -------------------------------------------------------------------------------


def _home(request, *, merchant: Merchant, product_form: ProductForm):
    products = list(selectors.merchant_products(merchant=merchant))
    for product in products:
        product.fee_percent = percent(product.refund_fee_bps)
    context = {
        "merchant": merchant,
        "district": district_name(merchant.district, get_language() or "zh-hans"),
        "balance": selectors.merchant_balance(merchant=merchant),
        "products": products,
        "product_form": product_form,
    }
    return render(request, "merchants/home.html", context)


@merchant_only
def home(request):
    return _home(request, merchant=merchant_of_request(request), product_form=ProductForm())


@require_POST
@merchant_only
def product_create(request):
    merchant = merchant_of_request(request)
    form = ProductForm(request.POST)
    if form.is_valid():
        key = form.idempotency_key(request, form="product")
        product = attempt(
            request,
            lambda: services.product_create(merchant=merchant, idempotency_key=key, **form.content),
            success=_("Product added."),
            form=form,
        )
        if product is not None:
            return redirect("web-merchant-home")
    return _home(request, merchant=merchant, product_form=form)


# --- (2) settlements ------------------------------------------------------------------------------


@merchant_only
def settlements(request):
    merchant = merchant_of_request(request)
    context = {
        "merchant": merchant,
        "balance": selectors.merchant_balance(merchant=merchant),
        "settlements": _page(request, selectors.merchant_settlements(merchant=merchant)),
    }
    return render(request, "merchants/settlements.html", context)


# --- (3) closure notice ----------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@merchant_only
def closure(request):
    merchant = merchant_of_request(request)
    form = ClosureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        announced = attempt(
            request,
            lambda: merchant_closure_announce(merchant=merchant, **form.cleaned_data),
            form=form,
        )
        if announced is not None:
            notified = announced[1]
            messages.success(
                request,
                _("Closure announced: sales have stopped and %(count)s consumer(s) were told.") % {"count": notified},
            )
            return redirect("web-merchant-closure")
    notice = closure_notice_rule()
    context = {
        "merchant": merchant,
        "form": form,
        "notice_days": notice.value,
        "notice_basis": notice.basis(get_language()),
    }
    return render(request, "merchants/closure.html", context)


# --- (4) moving premises -------------------------------------------------------------------------


class RelocationForm(forms.Form):
    moves_on = forms.DateField(
        label=gettext_lazy("Moving day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    district = forms.ChoiceField(label=gettext_lazy("New district"))
    address = forms.CharField(label=gettext_lazy("New address"), max_length=300)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        language = get_language() or "zh-hans"
        self.fields["district"].choices = [(code, district_name(code, language)) for code in DISTRICTS]
        notice = relocation_notice_rule()
        self.fields["moves_on"].help_text = _(
            "At least %(days)s days from today: %(earliest)s (Beijing time) or later."
        ) % {"days": notice.value, "earliest": beijing_date(relocation_earliest_day(notice=notice))}


@require_http_methods(["GET", "POST"])
@merchant_only
def relocation(request):
    """Give notice of a move (``merchant_relocation_announce``), or see the notice given."""
    merchant = merchant_of_request(request)
    form = RelocationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        given = attempt(
            request, lambda: merchant_relocation_announce(merchant=merchant, **form.cleaned_data), form=form
        )
        if given is not None:
            messages.success(
                request,
                _("Notice of moving given: %(count)s consumer(s) with money on their cards are being told.")
                % {"count": given.consumers_notified},
            )
            return redirect("web-merchant-relocation")
    language = get_language() or "zh-hans"
    notice, window = relocation_notice_rule(), relocation_refund_rule()
    pending = selectors.relocation_pending(merchant=merchant)
    latest = pending or selectors.relocation_latest(merchant=merchant)
    context = {
        "merchant": merchant,
        "form": form,
        "pending": pending,
        "latest": latest,
        "latest_district": district_name(latest.district, language) if latest else "",
        "notice_days": notice.value,
        "notice_basis": notice.basis(language),
        "refund_days": window.value,
        "refund_basis": window.basis(language),
        "can_give_notice": merchant.status == Merchant.Status.ACTIVE and pending is None,
    }
    return render(request, "merchants/relocation.html", context)


@require_POST
@merchant_only
def relocation_cancel(request):
    """Withdraw the notice of a move still to come."""
    merchant = merchant_of_request(request)
    attempt(
        request,
        lambda: merchant_relocation_cancel(merchant=merchant),
        success=_("The notice of moving is withdrawn."),
    )
    return redirect("web-merchant-relocation")


# --- (5) a change of operator ---------------------------------------------------------------------


class OperatorChangeForm(forms.Form):
    new_operator_name = forms.CharField(label=gettext_lazy("New operator's name"), max_length=200)
    new_license_number = forms.CharField(
        label=gettext_lazy("New operator's unified social credit code"), max_length=18, min_length=18
    )
    changes_on = forms.DateField(
        label=gettext_lazy("Day the new operator takes over"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        notice = operator_change_notice_rule()
        earliest = clock.local_date() + timedelta(days=notice.value)
        self.fields["changes_on"].help_text = _(
            "At least %(days)s days from today: %(earliest)s (Beijing time) or later."
        ) % {"days": notice.value, "earliest": beijing_date(earliest)}


@require_http_methods(["GET", "POST"])
@merchant_only
def operator_change(request):
    """Ask for a change of operator (``operator_change_request``), or follow the one asked for."""
    merchant = merchant_of_request(request)
    form = OperatorChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        asked = attempt(
            request,
            lambda: operator_change_request(merchant_id=merchant.pk, requested_by=request.user, **form.cleaned_data),
            success=_("The change of operator is sent to the regulator."),
            form=form,
        )
        if asked is not None:
            return redirect("web-merchant-operator-change")
    notice = operator_change_notice_rule()
    latest = selectors.operator_change_latest(merchant=merchant)
    context = {
        "merchant": merchant,
        "form": form,
        "change": latest,
        "notice_days": notice.value,
        "notice_basis": notice.basis(get_language()),
        "can_ask": merchant.status == Merchant.Status.ACTIVE
        and (latest is None or latest.state not in OperatorChange.OPEN),
    }
    return render(request, "merchants/operator_change.html", context)


# --- sign-up (mounted at /signup/merchant/) -----------------------------------------------------


class MerchantSignupForm(forms.Form):
    username = forms.CharField(label=gettext_lazy("Username"), max_length=150)
    password = forms.CharField(label=gettext_lazy("Password"), widget=forms.PasswordInput, min_length=8)
    name = forms.CharField(label=gettext_lazy("Business name"), max_length=200)
    license_number = forms.CharField(label=gettext_lazy("Unified social credit code"), max_length=18, min_length=18)
    category = forms.ChoiceField(label=gettext_lazy("Category"))
    district = forms.ChoiceField(label=gettext_lazy("District"))
    address = forms.CharField(label=gettext_lazy("Address"), max_length=300)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = Merchant.Category.choices
        language = get_language() or "zh-hans"
        self.fields["district"].choices = [(code, district_name(code, language)) for code in DISTRICTS]


def signup(request):
    """A new merchant signs up (``merchant_register``) and is logged in."""
    return signup_page(request, role="merchant", form_class=MerchantSignupForm, register=services.merchant_register)


merchant_only = role_required("merchant")


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files under one name, cleaned to a list (the service checks how many and which kinds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ",".join(DOCUMENT_SUFFIXES)}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list:
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class FilingForm(forms.Form):
    legal_representative = forms.CharField(label=gettext_lazy("Legal representative"), max_length=100)
    contact_phone = forms.RegexField(
        label=gettext_lazy("Contact phone"),
        regex=r"^[0-9+\- ]{5,20}$",
        max_length=20,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "tel"}),
    )
    deposit_bank = forms.CharField(
        label=gettext_lazy("Bank keeping the prepaid funds"),
        max_length=200,
        help_text=gettext_lazy("The bank and account where the money collected for cards is deposited."),
    )
    details = forms.CharField(
        label=gettext_lazy("Other details"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    documents = MultipleFileField(
        label=gettext_lazy("Documents"),
        required=False,
        help_text=gettext_lazy(
            "Business licence, fund deposit agreement and the other documents asked for: PDF, JPEG or PNG."
        ),
    )


@merchant_only
@require_http_methods(["GET", "POST"])
def filing(request):
    """The merchant's filing: whether one is required, by when and why, the regulator's note on a
    returned one, and the form (with its documents) while one awaits the merchant."""
    merchant = merchant_of_request(request)
    current = merchant_filing_current(merchant=merchant)
    form = FilingForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        submitted = attempt(
            request,
            lambda: filing_submit(merchant=merchant, **form.cleaned_data),
            success=_("Your filing is sent to the regulator."),
            form=form,
        )
        if submitted is not None:
            return redirect("web-merchant-filing")
    context = {
        "merchant": merchant,
        "filing": current,
        "status": merchant_filing_status(merchant=merchant),
        "basis": filing_basis(filing=current, language=get_language()),
        "documents": filing_documents(filing=current) if current is not None else [],
        "form": form,
        "can_submit": current is not None and current.state in Filing.AWAITING_MERCHANT,
    }
    return render(request, "merchants/filing.html", context)


@login_required
@require_GET
def filing_document(request, document_id):
    """A filing document, for its merchant and the regulator only (404 for anyone else)."""
    try:
        document = filing_document_get(user=request.user, document_id=document_id)
    except NotFound as exc:
        raise Http404 from exc
    return FileResponse(document.file.open("rb"), as_attachment=True, filename=document.name)
