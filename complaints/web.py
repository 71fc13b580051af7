"""The complaint pages of consumers and merchants: a consumer files and follows complaints
(mounted at ``/c/complaints/``), a merchant answers those against it (``/m/complaints/``); the
regulator's own complaint pages are ``regulator.web``'s.

Every page reads through the same selectors and writes through the same services as the API
(``complaints.api``); the forms here only carry what a person picks or types into the services'
arguments, and ``core.web.attempt`` shows the services' domain errors.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from complaints.models import Complaint
from complaints.selectors import complaint_list, complaints_visible_to
from complaints.services import complaint_file, complaint_respond, complaint_response_rule
from consumers import selectors as consumer_selectors
from consumers.models import Card
from core import clock
from core.errors import NotFound
from core.formatting import beijing_date, beijing_datetime
from core.web import OnceForm, attempt, role_required
from merchants.models import Merchant
from merchants.web import merchant_of_request

consumer_only = role_required("consumer")
merchant_only = role_required("merchant")

CONSUMER_PAGE_SIZE = 30  # as the consumer's other lists
MERCHANT_PAGE_SIZE = 25  # as the merchant's other lists
DESCRIPTION_MAX = 5000  # as the API's complaint input
UNANSWERED = (Complaint.State.OPEN, Complaint.State.OVERDUE)


def _page(request, items, size: int):
    return Paginator(items, size).get_page(request.GET.get("page"))


# --- the consumer's: file and follow ------------------------------------------------------------


class ComplaintForm(OnceForm):
    merchant = forms.ChoiceField(label=gettext_lazy("Merchant"))
    card = forms.ChoiceField(label=gettext_lazy("Card (optional)"), required=False)
    category = forms.ChoiceField(label=gettext_lazy("What went wrong"), choices=Complaint.Category.choices)
    description = forms.CharField(
        label=gettext_lazy("Description"), widget=forms.Textarea(attrs={"rows": 5}), max_length=DESCRIPTION_MAX
    )
    urgent = forms.BooleanField(label=gettext_lazy("Urgent"), required=False)

    def __init__(self, *args: Any, merchants: list[Merchant], cards: list[Card], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["merchant"].choices = [("", "—")] + [(str(m.pk), m.name) for m in merchants]
        self.fields["card"].choices = [("", _("No particular card"))] + [
            (
                str(card.pk),
                f"{card.merchant.name} · {card.product.name} · {beijing_date(card.created_at)}",
            )
            for card in cards
        ]
        self.fields["urgent"].help_text = _(
            "The merchant must answer within %(urgent)s hours instead of %(normal)s. Use it when the "
            "problem cannot wait, for example when the shop has shut its doors."
        ) % {
            "urgent": complaint_response_rule(urgent=True).value,
            "normal": complaint_response_rule(urgent=False).value,
        }


def _merchant_or_none(merchant_id) -> Merchant | None:
    try:
        return Merchant.objects.get(pk=merchant_id) if merchant_id else None
    except (Merchant.DoesNotExist, ValueError, forms.ValidationError):
        return None


@consumer_only
def consumer_complaints(request):
    """The consumer's complaints, newest first, to follow: deadline, answer, resolution."""
    state = request.GET.get("state")
    if state not in Complaint.State.values:
        state = None
    complaints = complaint_list(user=request.user, state=state).select_related("card__product")
    return render(
        request,
        "complaints/consumer_list.html",
        {
            "page": _page(request, complaints, CONSUMER_PAGE_SIZE),
            "state": state,
            "states": Complaint.State.choices,
            "now": clock.now(),
        },
    )


@consumer_only
def consumer_complaint_new(request):
    """File a complaint (``complaint_file``, source ``app``) about a merchant, optionally one card.
    ``?card=`` or ``?merchant=`` fill it in from the card's or the merchant's page."""
    try:  # a consumer login without a profile cannot complain in the app
        consumer_selectors.consumer_of_user(user=request.user)
    except NotFound as exc:
        raise Http404 from exc
    cards = list(consumer_selectors.cards_visible_to(user=request.user).select_related("merchant", "product"))
    merchants = {card.merchant_id: card.merchant for card in cards}
    initial: dict[str, str] = {}
    asked = next((card for card in cards if str(card.pk) == request.GET.get("card")), None)
    if asked is not None:
        initial = {"card": str(asked.pk), "merchant": str(asked.merchant_id)}
    other = _merchant_or_none(request.POST.get("merchant") or request.GET.get("merchant"))
    if other is not None:
        merchants.setdefault(other.pk, other)
        initial.setdefault("merchant", str(other.pk))
    form = ComplaintForm(
        request.POST or None,
        initial=initial,
        merchants=sorted(merchants.values(), key=lambda m: m.name),
        cards=cards,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        complaint = attempt(
            request,
            lambda: complaint_file(
                actor=request.user,
                merchant_id=data["merchant"],
                card_id=data["card"] or None,
                category=data["category"],
                description=data["description"],
                source=Complaint.Source.APP,
                urgent=data["urgent"],
                idempotency_key=form.idempotency_key(request, form="complaint"),
            ),
            form=form,
        )
        if complaint is not None:
            messages.success(
                request,
                _("Complaint filed. %(merchant)s must answer by %(respond_by)s (Beijing time).")
                % {
                    "merchant": merchants[complaint.merchant_id].name,
                    "respond_by": beijing_datetime(complaint.respond_by),
                },
            )
            return redirect("web-consumer-complaints")
    return render(request, "complaints/consumer_form.html", {"form": form})


# --- the merchant's: answer -----------------------------------------------------------------------


class ComplaintResponseForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("Your answer"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


def _merchant_complaints(
    request, *, merchant: Merchant, failed: Any = None, failed_form: ComplaintResponseForm | None = None
):
    mine = complaints_visible_to(user=request.user).select_related("card")
    now = clock.now()
    unanswered = list(mine.filter(state__in=UNANSWERED).order_by("respond_by", "pk"))
    for complaint in unanswered:
        complaint.late = complaint.state == Complaint.State.OVERDUE or complaint.respond_by <= now
        if failed_form is not None and str(complaint.pk) == str(failed):
            complaint.form = failed_form
        else:
            complaint.form = ComplaintResponseForm(auto_id=f"complaint-{complaint.pk}-%s")
    context = {
        "merchant": merchant,
        "unanswered": unanswered,
        "answered": _page(request, mine.exclude(state__in=UNANSWERED), MERCHANT_PAGE_SIZE),
    }
    return render(request, "complaints/merchant_list.html", context)


@merchant_only
def merchant_complaints(request):
    return _merchant_complaints(request, merchant=merchant_of_request(request))


@require_POST
@merchant_only
def merchant_complaint_answer(request, complaint_id):
    merchant = merchant_of_request(request)
    form = ComplaintResponseForm(request.POST, auto_id=f"complaint-{complaint_id}-%s")
    if form.is_valid():
        answered = attempt(
            request,
            lambda: complaint_respond(complaint_id=complaint_id, merchant=merchant, text=form.cleaned_data["text"]),
            success=_("Your answer was sent."),
            form=form,
        )
        if answered is not None:
            return redirect("web-merchant-complaints")
    return _merchant_complaints(request, merchant=merchant, failed=complaint_id, failed_form=form)
