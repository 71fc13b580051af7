"""The public record's pages under ``/p/``, for anyone without logging in: the search of merchants
and one merchant's record. They read the selectors the public API reads (``regulator.selectors.public``)
and are rate-limited alike (``regulator.ratelimit``)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from core.errors import NotFound
from merchants.models import Merchant
from merchants.registry import DISTRICTS, district_name
from regulator.ratelimit import public_rate_limited
from regulator.selectors import public as selectors

PAGE_SIZE = 20


def _language() -> str:
    return "en" if (get_language() or "").startswith("en") else "zh-hans"


class PublicSearchForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Name or licence number"), required=False, max_length=100)
    district = forms.ChoiceField(label=gettext_lazy("District"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["district"].choices = [("", _("All districts"))] + [
            (code, district_name(code, _language())) for code in DISTRICTS
        ]


@require_GET
@public_rate_limited
def public_merchant_list(request):
    """Merchants by name (or licence number) and district, by name."""
    form = PublicSearchForm(request.GET or None)
    merchants = Merchant.objects.none()
    searched = form.is_bound and form.is_valid()
    if searched:
        merchants = selectors.public_merchants(
            q=form.cleaned_data["q"] or None, district=form.cleaned_data["district"] or None
        )
    page = Paginator(merchants, PAGE_SIZE).get_page(request.GET.get("page"))
    for merchant in page:
        merchant.district_label = district_name(merchant.district, _language())
    return render(request, "regulator/public_merchant_list.html", {"form": form, "page": page, "searched": searched})


@require_GET
@public_rate_limited
def public_merchant_detail(request, merchant_id):
    """One merchant's public record, with what each figure means."""
    try:
        record = selectors.public_merchant_record(merchant_id=merchant_id)
    except NotFound as exc:
        raise Http404 from exc
    context = {
        "record": record,
        "district_label": district_name(record["district"], _language()),
        "category_label": Merchant.Category(record["category"]).label,
        "status_label": Merchant.Status(record["status"]).label,
        "cache_minutes": max(1, settings.PUBLIC_RECORD_CACHE_SECONDS // 60),
    }
    response = render(request, "regulator/public_merchant_detail.html", context)
    # Shared caches may keep it only when it is the same page for everyone: a visitor's.
    if request.user.is_authenticated:
        patch_cache_control(response, private=True, max_age=settings.PUBLIC_RECORD_CACHE_SECONDS)
    else:
        patch_cache_control(response, public=True, max_age=settings.PUBLIC_RECORD_CACHE_SECONDS)
    return response
