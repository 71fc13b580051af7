"""The regulator's pages of disputes: the list (open ones first, by their deadline; filtered by
state), one dispute with both sides' evidence and the decision form, and the evidence files. Each
reads through ``consumers.selectors`` scoped to the regulator's jurisdiction
(``regulator.selectors.jurisdiction``: any other dispute is "not found") and decides through
``regulator.services.disputes`` (the API's ``regulator.api.disputes`` does the same)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from consumers.disputes import NOTE_MAX
from consumers.disputes_api import evidence_download
from consumers.models import Dispute
from consumers.selectors import dispute_among, dispute_evidence, dispute_evidence_get, disputes_among
from core.errors import NotFound
from core.formatting import yuan
from core.rules import rule
from core.web import attempt, role_required
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.services.disputes import regulator_dispute_decide

regulator_only = role_required("regulator")
PAGE_SIZE = 25


class DisputeFilterForm(forms.Form):
    state = forms.ChoiceField(label=gettext_lazy("State"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = [("", _("All states")), *Dispute.State.choices]


class DisputeDecisionForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Note to both sides"),
        required=False,
        max_length=NOTE_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("What the decision rests on; both sides and the audit log see it."),
    )


@regulator_only
@require_GET
def disputes(request):
    form = DisputeFilterForm(request.GET or None)
    state = form.cleaned_data["state"] or None if form.is_valid() else None
    rows = disputes_among(merchants=jurisdiction_of(request.user).merchants(), state=state)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "regulator/disputes.html", {"form": form, "page": page, "query": query.urlencode()})


def _dispute_page(request, dispute_id, *, form: DisputeDecisionForm | None = None, status: int = 200):
    try:
        dispute = dispute_among(merchants=jurisdiction_of(request.user).merchants(), dispute_id=dispute_id)
    except NotFound as exc:
        raise Http404 from exc
    context = {
        "dispute": dispute,
        "redemption": dispute.redemption,
        "evidence": dispute_evidence(dispute=dispute),
        "form": form or DisputeDecisionForm(),
        "open": dispute.is_open,
        "decision_basis": rule("dispute_decision_days").basis(get_language()),
    }
    return render(request, "regulator/dispute_detail.html", context, status=status)


@regulator_only
@require_GET
def dispute_detail(request, dispute_id):
    return _dispute_page(request, dispute_id)


@regulator_only
@require_POST
def dispute_decide(request, dispute_id):
    """Uphold or dismiss (the button pressed says which)."""
    form = DisputeDecisionForm(request.POST)
    if not form.is_valid():
        return _dispute_page(request, dispute_id, form=form, status=400)
    outcome = Dispute.State.UPHELD if request.POST.get("outcome") == "upheld" else Dispute.State.DISMISSED
    try:
        decided = attempt(
            request,
            lambda: regulator_dispute_decide(
                regulator=request.user, dispute_id=dispute_id, outcome=outcome, note=form.cleaned_data["note"]
            ),
            form=form,
        )
    except NotFound as exc:
        raise Http404 from exc
    if decided is None:
        return _dispute_page(request, dispute_id, form=form, status=409)
    if decided.state == Dispute.State.UPHELD:
        message = _("The dispute is upheld: %(amount)s is released to the merchant.") % {
            "amount": yuan(decided.released)
        }
    else:
        message = _("The dispute is dismissed: nothing is released.")
    messages.success(request, message)
    return redirect("web-regulator-dispute", dispute_id=dispute_id)


@regulator_only
@require_GET
def evidence_file(request, evidence_id):
    try:
        evidence = dispute_evidence_get(
            user=request.user, evidence_id=evidence_id, merchants=jurisdiction_of(request.user).merchants()
        )
    except NotFound as exc:
        raise Http404 from exc
    return evidence_download(evidence)
