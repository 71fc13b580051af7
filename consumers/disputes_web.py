"""The pages of disputes for their two sides: the merchant's list of rejected services it may still
contest (with the "contest" form) and of its disputes; one dispute, for its merchant and for its
consumer, with the evidence of both and the form to add more while it is open; and the evidence
files, downloaded by either side. The regulator's pages are ``regulator.web_disputes``.

Every page reads through ``consumers.selectors`` and writes through ``consumers.disputes``, as the
API does (``consumers.disputes_api``); ``core.web.attempt`` shows a refusal.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.text import format_lazy
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from consumers import disputes, rules, selectors
from consumers.disputes_api import evidence_download
from consumers.models import Dispute, Redemption
from core.errors import NotFound
from core.rules import rule
from core.uploads import ACCEPTED, SUFFIXES
from core.web import attempt, role_required
from merchants.web import MultipleFileField, MultipleFileInput, merchant_of_request

consumer_only = role_required("consumer")
merchant_only = role_required("merchant")
PAGE_SIZE = 25
FILE_ACCEPT = ",".join([*SUFFIXES.values(), ".jpeg", *ACCEPTED])


def _files_field(label) -> MultipleFileField:
    return MultipleFileField(
        label=label,
        required=False,
        widget=MultipleFileInput(attrs={"accept": FILE_ACCEPT}),
        help_text=format_lazy(
            gettext_lazy("PDF, JPEG or PNG, up to {count} at a time."), count=disputes.FILES_PER_SUBMISSION
        ),
    )


class EvidenceForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("What happened"),
        required=False,
        max_length=disputes.TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    files = _files_field(gettext_lazy("Photos and documents"))


class DisputeOpenForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why the service was given"),
        max_length=disputes.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("The regulator reads this with your evidence and the consumer's answer."),
    )
    files = _files_field(gettext_lazy("Evidence (sign-in sheet, photos, records)"))


def _dispute_page(request, dispute: Dispute, *, form: EvidenceForm | None = None, status: int = 200):
    context: dict[str, Any] = {
        "dispute": dispute,
        "redemption": dispute.redemption,
        "evidence": selectors.dispute_evidence(dispute=dispute),
        "form": form or EvidenceForm(),
        "party": request.user.role,
        "open": dispute.is_open,
        "decision_basis": rule("dispute_decision_days").basis(get_language()),
    }
    return render(request, "consumers/dispute_detail.html", context, status=status)


def _dispute_or_404(request, dispute_id) -> Dispute:
    try:
        return selectors.dispute_get(user=request.user, dispute_id=dispute_id)
    except NotFound as exc:
        raise Http404 from exc


def _dispute_view(request, dispute_id):
    """GET: the dispute; POST: add the party's evidence (``dispute_evidence_add``)."""
    dispute = _dispute_or_404(request, dispute_id)
    if request.method == "POST":
        form = EvidenceForm(request.POST, request.FILES)
        if form.is_valid():
            added = attempt(
                request,
                lambda: disputes.dispute_evidence_add(
                    user=request.user,
                    dispute_id=dispute.pk,
                    text=form.cleaned_data["text"],
                    files=form.cleaned_data["files"],
                ),
                success=_("Your evidence is added. The regulator sees it with the rest."),
                form=form,
            )
            if added is not None:
                return redirect(request.path)
        return _dispute_page(request, _dispute_or_404(request, dispute_id), form=form, status=400)
    return _dispute_page(request, dispute)


@consumer_only
@require_http_methods(["GET", "POST"])
def consumer_dispute(request, dispute_id):
    return _dispute_view(request, dispute_id)


@merchant_only
@require_http_methods(["GET", "POST"])
def merchant_dispute(request, dispute_id):
    return _dispute_view(request, dispute_id)


@merchant_only
@require_GET
def merchant_disputes(request):
    """Rejected services the merchant may still contest, then its disputes, newest first."""
    merchant = merchant_of_request(request)
    page = Paginator(selectors.disputes_visible_to(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    window = rule("dispute_window_days")
    context = {
        "contestable": selectors.redemptions_contestable(merchant=merchant),
        "page": page,
        "window_days": window.value,
        "window_basis": window.basis(get_language()),
    }
    return render(request, "consumers/merchant_disputes.html", context)


def _redemption_or_404(request, redemption_id) -> Redemption:
    try:
        return selectors.redemptions_visible_to(user=request.user).select_related("card__product").get(pk=redemption_id)
    except (Redemption.DoesNotExist, ValueError) as exc:
        raise Http404 from exc


@merchant_only
@require_http_methods(["GET", "POST"])
def merchant_dispute_open(request, redemption_id):
    """The "contest" form of one rejected service (``dispute_open``), or why it cannot be contested."""
    merchant = merchant_of_request(request)
    redemption = _redemption_or_404(request, redemption_id)
    existing = Dispute.objects.filter(redemption=redemption).values_list("pk", flat=True).first()
    if existing is not None:
        return redirect("web-merchant-dispute", dispute_id=existing)
    form = DisputeOpenForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        dispute = attempt(
            request,
            lambda: disputes.dispute_open(
                merchant=merchant,
                redemption_id=redemption.pk,
                reason=form.cleaned_data["reason"],
                files=form.cleaned_data["files"],
            ),
            success=_("Your dispute is with the regulator. The consumer is asked for their side."),
            form=form,
        )
        if dispute is not None:
            return redirect("web-merchant-dispute", dispute_id=dispute.pk)
    until = selectors.redemption_contestable_until(redemption)
    window = rule("dispute_window_days")
    context = {
        "redemption": redemption,
        "form": form,
        "until": until,
        "window_ends_at": rules.dispute_window_ends_at(redemption.decided_at) if redemption.decided_at else None,
        "window_basis": window.basis(get_language()),
    }
    return render(
        request,
        "consumers/merchant_dispute_open.html",
        context,
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_GET
def evidence_file(request, evidence_id):
    """A file of evidence, as an attachment, for the dispute's two sides (404 for anyone else)."""
    try:
        evidence = selectors.dispute_evidence_get(user=request.user, evidence_id=evidence_id)
    except NotFound as exc:
        raise Http404 from exc
    return evidence_download(evidence)
