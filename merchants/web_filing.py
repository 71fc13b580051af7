"""The merchant's filing (备案) page under ``/m/filing/``, and a filing document for its merchant or the
regulator. They read through ``merchants.selectors_filing`` and write through ``filing_submit``,
as the API does (``merchants.api_filing``).

(A module of its own while ``merchants/web.py`` is being reworked; it folds in there.)"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import NotFound
from core.rules import rules_active
from core.web import attempt, role_required
from merchants import selectors
from merchants.models import Filing, Merchant
from merchants.selectors_filing import (
    filing_document_get,
    filing_documents,
    merchant_filing_current,
    merchant_filing_status,
)
from merchants.services.filing import DOCUMENT_SUFFIXES, filing_submit

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


def _merchant(request) -> Merchant:
    try:
        return selectors.merchant_of_user(user=request.user)
    except NotFound as exc:
        raise Http404 from exc


def _basis(filing: Filing | None) -> str:
    """The provision of the rule that required the filing, in the page's language."""
    if filing is None:
        return ""
    profile = rules_active()
    if profile.key != filing.profile:
        return ""
    try:
        return profile.rule(filing.trigger, category=filing.merchant.category).basis(get_language())
    except KeyError:
        return ""


@merchant_only
@require_http_methods(["GET", "POST"])
def filing(request):
    """The merchant's filing: whether one is required, by when and why, the regulator's note on a
    returned one, and the form (with its documents) while one awaits the merchant."""
    merchant = _merchant(request)
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
        "basis": _basis(current),
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
