"""The regulator's pages of inspection cases, under ``/r/cases/``: the list with the form that opens a
case (flagged merchants offered first; a merchant's page links here with it chosen), and one case with
a form for each step (assign, findings with files, ask the merchant for documents, link a measure,
close) and its timeline. Also the case report PDF and the download of a case's file.

The pages read through ``regulator.selectors.cases`` and write through ``regulator.services.cases``,
the API's own; a refusal comes back as a message (``core.web.attempt``) and the form is shown again.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import NotFound
from core.formatting import beijing_date
from core.models import User
from core.web import OnceForm, attempt, role_required
from merchants.models import Merchant
from merchants.web import MultipleFileField
from regulator.case_files import case_file_response
from regulator.models import InspectionCase, RegulatorAction
from regulator.reports.case import case_report_pdf
from regulator.selectors import cases as selectors
from regulator.selectors.audit import audit_actor_in_words, audit_changes_in_words, audit_verb_label
from regulator.services import cases as services

regulator_only = role_required("regulator")

PAGE_SIZE = 25
ID_FIELDS = ("finding", "document_request", "action")  # ids in an audit line: the page shows the things


def _case_or_404(request, case_id) -> InspectionCase:
    try:
        return selectors.case_get(user=request.user, case_id=case_id)
    except NotFound as exc:
        raise Http404 from exc


# --- forms -----------------------------------------------------------------------------------------


class CaseFilterForm(forms.Form):
    state = forms.ChoiceField(label=gettext_lazy("State"), required=False)
    merchant = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="case-filter-%s", **kwargs)
        self.fields["state"].choices = [("", _("All states")), *InspectionCase.State.choices]


class OpenCaseForm(OnceForm):
    merchant = forms.ChoiceField(
        label=gettext_lazy("Merchant"),
        required=False,
        help_text=gettext_lazy("Flagged merchants first, then the riskiest of the others."),
    )
    reference = forms.CharField(
        label=gettext_lazy("Or another merchant"),
        required=False,
        max_length=64,
        help_text=gettext_lazy("Its unified social credit code (licence number)."),
    )
    reason = forms.CharField(
        label=gettext_lazy("Why the case is opened"),
        max_length=services.REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, user: User, chosen: Merchant | None = None, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="open-case-%s", **kwargs)
        self.user = user
        flagged, others = selectors.case_merchants_offered(user=user)
        if chosen is not None and chosen not in flagged and chosen not in others:
            others = [chosen, *others]
        groups: list[tuple[str, Any]] = [("", _("Choose a merchant"))]
        if flagged:
            groups.append((_("Flagged"), [(str(m.pk), _merchant_label(m)) for m in flagged]))
        if others:
            groups.append((_("Others, highest risk first"), [(str(m.pk), _merchant_label(m)) for m in others]))
        self.fields["merchant"].choices = groups
        if chosen is not None:
            self.fields["merchant"].initial = str(chosen.pk)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        reference = (data.get("reference") or "").strip()
        if reference:
            found = selectors.case_merchant_by_reference(user=self.user, reference=reference)
            if found is None:
                self.add_error("reference", _("No merchant you cover has this licence number."))
            else:
                data["merchant"] = str(found.pk)
        elif not data.get("merchant"):
            self.add_error("merchant", _("Choose a merchant, or enter another one's licence number."))
        return data


def _merchant_label(merchant: Merchant) -> str:
    return _("%(name)s (risk %(score)s)") % {"name": merchant.name, "score": merchant.risk_score}


class AssignForm(forms.Form):
    assignee = forms.ChoiceField(label=gettext_lazy("Inspector"))

    def __init__(self, *args: Any, case: InspectionCase, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="assign-%s", **kwargs)
        self.fields["assignee"].choices = [
            (user.username, user.username) for user in selectors.case_assignees(merchant=case.merchant)
        ]
        if case.assignee_id:
            self.fields["assignee"].initial = case.assignee.username


class FindingForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("What was found"), max_length=services.TEXT_MAX, widget=forms.Textarea(attrs={"rows": 4})
    )
    files = MultipleFileField(
        label=gettext_lazy("Files"),
        required=False,
        help_text=gettext_lazy("Photos and documents: PDF, JPEG or PNG, up to %(count)s files.")
        % {"count": services.MAX_FILES},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="finding-%s", **kwargs)


class DocumentRequestForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Documents the merchant must send"),
        max_length=services.REQUEST_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("The merchant is told at once and sends them from its pages."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="request-%s", **kwargs)


class MeasureForm(forms.Form):
    action = forms.ChoiceField(label=gettext_lazy("Action taken against the merchant"))

    def __init__(self, *args: Any, case: InspectionCase, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="measure-%s", **kwargs)
        self.fields["action"].choices = [
            (str(action.pk), _action_label(action)) for action in selectors.case_measures_linkable(case=case)
        ]


def _action_label(action: RegulatorAction) -> str:
    return f"{beijing_date(action.created_at)} · {action.get_action_display()} · {action.reason[:60]}"


class CloseForm(forms.Form):
    conclusion = forms.CharField(
        label=gettext_lazy("Conclusion"), max_length=services.TEXT_MAX, widget=forms.Textarea(attrs={"rows": 4})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, auto_id="close-%s", **kwargs)


# --- the list --------------------------------------------------------------------------------------


def _chosen_merchant(request, merchant_id) -> Merchant | None:
    if not merchant_id:
        return None
    return selectors.case_merchant_by_reference(user=request.user, reference=str(merchant_id))


def _cases_page(request, *, open_form: OpenCaseForm | None = None, status: int = 200) -> HttpResponse:
    filters = CaseFilterForm(request.GET)
    filters.is_valid()  # an unknown value is dropped (and shown as the field's error); the rest apply
    data = filters.cleaned_data
    merchant = _chosen_merchant(request, data.get("merchant"))
    rows = selectors.cases_for_regulator(
        user=request.user, state=data.get("state") or None, merchant_id=merchant.pk if merchant else None
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filters": filters,
        "merchant": merchant,
        "page": page,
        "open_form": open_form or OpenCaseForm(user=request.user, chosen=merchant),
    }
    return render(request, "regulator/cases.html", context, status=status)


@regulator_only
@require_http_methods(["GET", "POST"])
def cases(request):
    """The cases (GET), and a case opened (POST)."""
    if request.method == "GET":
        return _cases_page(request)
    form = OpenCaseForm(request.POST, user=request.user)
    if form.is_valid():
        data = form.cleaned_data
        case = attempt(
            request,
            lambda: services.case_open(
                regulator=request.user,
                merchant_id=data["merchant"],
                reason=data["reason"],
                idempotency_key=form.idempotency_key(request, form="open-case"),
            ),
            success=_("The inspection case is opened."),
            form=form,
        )
        if case is not None:
            return redirect("web-regulator-case", case_id=case.pk)
    return _cases_page(request, open_form=form, status=400)


# --- one case --------------------------------------------------------------------------------------


def _timeline(case: InspectionCase) -> list[dict[str, Any]]:
    rows = []
    for event in selectors.case_audit_trail(case=case):
        changes = {field: pair for field, pair in event.changes.items() if field not in ID_FIELDS}
        rows.append(
            {
                "created_at": event.created_at,
                "verb": event.verb,
                "label": audit_verb_label("action", event.verb),
                "actor": audit_actor_in_words(event.actor.username if event.actor else event.actor_label),
                "reason": event.reason,
                "changes": audit_changes_in_words(verb=event.verb, changes=changes),
            }
        )
    return rows


def _case_page(request, case: InspectionCase, *, status: int = 200, **forms_given: forms.Form) -> HttpResponse:
    live = case.state != InspectionCase.State.CLOSED
    measure_form = forms_given.get("measure_form") or MeasureForm(case=case)
    context = {
        "case": case,
        "live": live,
        "findings": list(selectors.case_findings(case=case)),
        "requests": list(selectors.case_document_requests(case=case)),
        "measures": list(selectors.case_measures(case=case)),
        "timeline": _timeline(case),
        "assign_form": forms_given.get("assign_form") or AssignForm(case=case),
        "finding_form": forms_given.get("finding_form") or FindingForm(),
        "request_form": forms_given.get("request_form") or DocumentRequestForm(),
        "measure_form": measure_form,
        "measures_linkable": bool(measure_form.fields["action"].choices),
        "close_form": forms_given.get("close_form") or CloseForm(),
    }
    return render(request, "regulator/case_detail.html", context, status=status)


@regulator_only
@require_GET
def case_detail(request, case_id):
    return _case_page(request, _case_or_404(request, case_id))


def _step(request, case: InspectionCase, *, form: forms.Form, name: str, call, success: str, anchor: str):
    """Run one step's service from its form: back to the case on success (at ``anchor``) or on a
    refusal in the case's present state (its message shown there), else the page again with the
    form's errors (400)."""
    if form.is_valid():
        done = attempt(request, lambda: call(form.cleaned_data), success=success, form=form)
        if done is not None:
            return redirect(reverse("web-regulator-case", args=[case.pk]) + f"#{anchor}")
        if not form.errors:  # refused in the case's present state: the message says why
            return redirect(reverse("web-regulator-case", args=[case.pk]))
    return _case_page(request, case, status=400, **{name: form})


@regulator_only
@require_POST
def case_assign(request, case_id):
    case = _case_or_404(request, case_id)
    return _step(
        request,
        case,
        form=AssignForm(request.POST, case=case),
        name="assign_form",
        call=lambda data: services.case_assign(regulator=request.user, case_id=case.pk, assignee=data["assignee"]),
        success=_("The case is assigned."),
        anchor="case-summary",
    )


@regulator_only
@require_POST
def case_finding(request, case_id):
    case = _case_or_404(request, case_id)
    return _step(
        request,
        case,
        form=FindingForm(request.POST, request.FILES),
        name="finding_form",
        call=lambda data: services.case_finding_add(
            regulator=request.user, case_id=case.pk, text=data["text"], files=data["files"]
        ),
        success=_("The finding is recorded."),
        anchor="findings",
    )


@regulator_only
@require_POST
def case_documents_request(request, case_id):
    case = _case_or_404(request, case_id)
    return _step(
        request,
        case,
        form=DocumentRequestForm(request.POST),
        name="request_form",
        call=lambda data: services.case_documents_request(regulator=request.user, case_id=case.pk, text=data["text"]),
        success=_("The merchant is asked for the documents and has been told."),
        anchor="requests",
    )


@regulator_only
@require_POST
def case_measure(request, case_id):
    case = _case_or_404(request, case_id)
    return _step(
        request,
        case,
        form=MeasureForm(request.POST, case=case),
        name="measure_form",
        call=lambda data: services.case_measure_link(regulator=request.user, case_id=case.pk, action_id=data["action"]),
        success=_("The measure is linked to the case."),
        anchor="measures",
    )


@regulator_only
@require_POST
def case_close(request, case_id):
    case = _case_or_404(request, case_id)
    return _step(
        request,
        case,
        form=CloseForm(request.POST),
        name="close_form",
        call=lambda data: services.case_close(regulator=request.user, case_id=case.pk, conclusion=data["conclusion"]),
        success=_("The case is closed."),
        anchor="case-summary",
    )


@regulator_only
@require_GET
def case_report(request, case_id):
    """The case report PDF (the API's ``report.pdf`` by session)."""
    try:
        pdf = case_report_pdf(user=request.user, case_id=case_id)
    except NotFound as exc:
        raise Http404 from exc
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="case-report-{case_id}.pdf"'
    return response


@login_required
@require_GET
def case_file(request, file_id):
    """A case's file, as a download: to a regulator covering the merchant, and to the merchant the
    files it sent; anyone else is told it does not exist."""
    try:
        row = selectors.case_file_get(user=request.user, file_id=file_id)
    except NotFound as exc:
        raise Http404 from exc
    return case_file_response(row)
