"""The market regulator's pages: the dashboard, the merchants under watch, a merchant's risk and the
actions against it, the complaints queue and its statistics, the audit log and the ledger check.

Every page reads through the selectors and writes through the services the API uses
(``regulator.api``): ``regulator_merchants``, ``risk_latest``/``risk_history``, ``merchant_action_take``,
``compute_risk``, ``complaint_list``/``complaint_file``/``complaint_close``/``complaint_stats``,
``audit_log_keys``/``audit_log_rows``, ``ledger_verify`` and ``audit_report_pdf``. The forms here only
turn what a person types into those functions' arguments; a service's refusal comes back as a
message through ``core.web.attempt``. Charts are inline SVG from ``regulator.charts``.

Every page is of the regulator's jurisdiction (``jurisdiction_of``): its counts, charts, lists and
filters hold its merchants alone, and a merchant, action, complaint, card, refund or filing outside
it is a 404, as a missing one is. The ledger page is the whole book's (see the jurisdiction module).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import urlencode
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from complaints.models import Complaint
from complaints.selectors import complaint_get, complaint_list, complaint_stats
from complaints.services import complaint_close, complaint_file, complaint_response_rule
from consumers.selectors import card_get
from core import clock
from core.calendar import calendar_gaps
from core.errors import NotFound
from core.formatting import beijing_date, yuan
from core.rules import Rule, rule_label, rules_active, rules_in_force
from core.web import OnceForm, attempt, next_url, role_required
from escrow.models import JournalEntry, LedgerCheck
from escrow.services import ledger_check_run
from merchants.models import Filing, Merchant, OperatorChange
from merchants.registry import DISTRICTS, district_name
from merchants.selectors import filing_documents, operator_changes_for_regulator
from notifications.selectors import fanout_for_event
from refunds.selectors import cards_refundable_for_default, operator_change_refund_job
from regulator import charts, tasks
from regulator.api.reports import periodic_report_download
from regulator.errors import ReportNotReady
from regulator.exports import export_count
from regulator.models import RegulatorAction, RiskLevel
from regulator.reports import periodic_figures
from regulator.reports.audit import audit_report_pdf
from regulator.reports.periodic_text import jurisdiction_label, rate
from regulator.reports.periods import MONTH, QUARTER, Period, period_label, period_parse, periods_recent
from regulator.selectors import audit as audit_selectors
from regulator.selectors import dashboard as dashboard_selectors
from regulator.selectors import risk as risk_selectors
from regulator.selectors.jurisdiction import Jurisdiction, jurisdiction_of
from regulator.selectors.periodic_reports import (
    periodic_report_file,
    periodic_report_get,
    periodic_report_progress,
    periodic_reports_for,
)
from regulator.selectors.scoped import (
    regulator_filing_get,
    regulator_filings,
    regulator_refunds,
    regulator_refunds_needing_attention,
)
from regulator.services.actions import action_notify_key, merchant_action_take
from regulator.services.audit import audit_report_recorded
from regulator.services.filings import regulator_filing_accept, regulator_filing_return
from regulator.services.operator_changes import (
    regulator_operator_change_approve,
    regulator_operator_change_get,
    regulator_operator_change_reject,
)
from regulator.services.periodic_reports import periodic_report_generate
from regulator.services.refunds import regulator_card_refund, regulator_refund_retry
from regulator.services.risk import compute_risk

regulator_only = role_required("regulator")

PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
MERCHANT_COMPLAINTS = 10

SIGNAL_NAMES = {
    "escrow_outstanding": gettext_lazy("Escrow outstanding"),
    "months_owed": gettext_lazy("Months of service owed"),
    "sales_surge": gettext_lazy("Sales surge"),
    "redemption_drop": gettext_lazy("Drop in services"),
    "discount_depth": gettext_lazy("Discount depth"),
    "complaints_per_100_cards": gettext_lazy("Complaints per 100 cards"),
    "overdue_complaints": gettext_lazy("Overdue complaints"),
    "refund_rate": gettext_lazy("Refund rate"),
    "rejected_redemptions": gettext_lazy("Rejected services"),
    "filing_threshold": gettext_lazy("At the filing threshold"),
    "refunds_late": gettext_lazy("Refunds late or failed"),
}
RATIO_SIGNALS = ("redemption_drop", "discount_depth", "refund_rate", "rejected_redemptions")

ORDERING_LABELS = {
    "-risk_score": gettext_lazy("Risk score, highest first"),
    "risk_score": gettext_lazy("Risk score, lowest first"),
    "-escrow_outstanding": gettext_lazy("Escrow outstanding, largest first"),
    "escrow_outstanding": gettext_lazy("Escrow outstanding, smallest first"),
    "-complaints_90d": gettext_lazy("Complaints (90 days), most first"),
    "complaints_90d": gettext_lazy("Complaints (90 days), fewest first"),
    "name": gettext_lazy("Name, A to Z"),
    "-name": gettext_lazy("Name, Z to A"),
    "-created_at": gettext_lazy("Newest first"),
    "created_at": gettext_lazy("Oldest first"),
}


def _language() -> str:
    return "en" if (get_language() or "").startswith("en") else "zh-hans"


def _district_choices(blank: str | None, jurisdiction: Jurisdiction) -> list[tuple[str, str]]:
    """The districts of the jurisdiction, by name."""
    language = _language()
    codes = DISTRICTS if jurisdiction.districts is None else [c for c in DISTRICTS if c in jurisdiction.districts]
    choices = [(code, district_name(code, language)) for code in codes]
    return [("", blank), *choices] if blank is not None else choices


def _category_choices(choices, jurisdiction: Jurisdiction) -> list[tuple[str, str]]:
    """Merchant categories of the jurisdiction (the others would only ever show nothing)."""
    if jurisdiction.categories is None:
        return list(choices)
    return [(value, label) for value, label in choices if value in jurisdiction.categories]


def _jurisdiction_text(jurisdiction: Jurisdiction) -> str:
    """The jurisdiction in words: "朝阳区、海淀区 · 教育培训", or the whole city."""
    if jurisdiction.city_wide:
        return _("The whole city")
    language = _language()
    comma = ", " if language == "en" else "、"
    parts = []
    if jurisdiction.districts is not None:
        parts.append(comma.join(district_name(code, language) for code in jurisdiction.districts if code in DISTRICTS))
    else:
        parts.append(_("every district"))
    if jurisdiction.categories is not None:
        labels = dict(Merchant.Category.choices)
        parts.append(comma.join(str(labels.get(value, value)) for value in jurisdiction.categories))
    else:
        parts.append(_("every category"))
    return " · ".join(parts)


def _with_blank(choices, blank: str) -> list[tuple[str, str]]:
    return [("", blank), *choices]


def _is_htmx(request) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def _partial_or_page(request, page: str, partial: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    """The whole page, or only the part an htmx request swaps in."""
    response = render(request, partial if _is_htmx(request) else page, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _merchant_or_404(request, merchant_id) -> Merchant:
    """A merchant of the regulator's jurisdiction; any other is a 404, as a missing one."""
    try:
        return risk_selectors.merchant_get(jurisdiction=jurisdiction_of(request.user), merchant_id=merchant_id)
    except NotFound as exc:
        raise Http404 from exc


def _or_404(call: Any) -> Any:
    """A selector's answer; its ``NotFound`` (missing, or outside the jurisdiction) as a 404 page."""
    try:
        return call()
    except NotFound as exc:
        raise Http404 from exc


# --- dashboard -------------------------------------------------------------------------------------


def _bucket_label(low: int, high: int) -> str:
    return f"{low}–{high}"


@regulator_only
@require_GET
def dashboard(request):
    language = _language()
    jurisdiction = jurisdiction_of(request.user)
    escrow = dashboard_selectors.dashboard_escrow_total(jurisdiction=jurisdiction)
    levels = dashboard_selectors.dashboard_risk_levels(jurisdiction=jurisdiction)
    histogram = dashboard_selectors.dashboard_risk_histogram(jurisdiction=jurisdiction)
    by_district = dashboard_selectors.dashboard_escrow_by_district(jurisdiction=jurisdiction)
    trend = dashboard_selectors.dashboard_sales_and_releases(jurisdiction=jurisdiction)

    district_rows = sorted(
        (
            {
                "code": code,
                "name": district_name(code, language),
                "escrow": by_district.get(code, (0, 0))[0],
                "cards": by_district.get(code, (0, 0))[1],
            }
            for code, _name in _district_choices(None, jurisdiction)
        ),
        key=lambda row: (-row["escrow"], row["code"]),
    )
    months = [f"{row['month']:%Y-%m}" for row in trend]
    context = {
        "jurisdiction": _jurisdiction_text(jurisdiction),
        "escrow": escrow,
        "levels": levels,
        "overdue_complaints": dashboard_selectors.dashboard_overdue_complaints(jurisdiction=jurisdiction),
        "flagged": dashboard_selectors.dashboard_flagged_merchants(jurisdiction=jurisdiction),
        "calendar_gaps": calendar_gaps(),
        "histogram": [
            {"label": _bucket_label(low, high), "low": low, "high": high, "count": n} for low, high, n in histogram
        ],
        "district_rows": district_rows,
        "trend": trend,
        "risk_chart": charts.histogram(
            [(_bucket_label(low, high), n) for low, high, n in histogram],
            edges=[str(low) for low, _high, _n in histogram] + [str(histogram[-1][1])],
            chart_id="chart-risk-histogram",
            title=_("Merchants by risk score"),
            desc=_("Number of merchants in each band of ten risk points."),
        ),
        "district_chart": charts.bar_chart(
            [(row["name"], row["escrow"]) for row in district_rows if row["escrow"]],
            chart_id="chart-escrow-by-district",
            title=_("Escrow outstanding by district"),
            value_format=yuan,
        ),
        "trend_chart": charts.line_chart(
            months,
            [
                charts.Series(_("Card sales"), [row["sales"] for row in trend]),
                charts.Series(_("Releases to merchants"), [row["released"] for row in trend]),
            ],
            chart_id="chart-sales-releases",
            title=_("Card sales against releases, by month"),
            value_format=yuan,
            axis_format=charts.yuan_axis,
            partial=charts.current_month_note(months[-1]) if months else "",
        ),
    }
    return render(request, "regulator/dashboard.html", context)


_UNITS = {
    "days": lambda n: ngettext("%(n)s day", "%(n)s days", n) % {"n": n},
    "working_days": lambda n: ngettext("%(n)s working day", "%(n)s working days", n) % {"n": n},
    "hours": lambda n: ngettext("%(n)s hour", "%(n)s hours", n) % {"n": n},
    "sessions": lambda n: ngettext("%(n)s session", "%(n)s sessions", n) % {"n": n},
    "cards": lambda n: ngettext("%(n)s card", "%(n)s cards", n) % {"n": n},
    "transfers": lambda n: ngettext("%(n)s transfer", "%(n)s transfers", n) % {"n": n},
    "fen": yuan,
}


def _rule_row(found: Rule, language: str) -> dict[str, Any]:
    return {
        "label": rule_label(found.key),
        "value": _UNITS[found.unit](found.value),
        "basis": found.basis(language),
        "effective": found.effective,
        "verified": found.verified,
        "overridden_by": found.overridden_by,
    }


@regulator_only
@require_GET
def rules(request):
    """The rules profile in force: every rule in words, with its provision and the date it took effect."""
    language = _language()
    profile = rules_active()
    in_force = rules_in_force()
    general = [_rule_row(found, language) for found in in_force if found.industry is None]
    parts = [
        {
            "name": part.name_en if language.startswith("en") else part.name_zh,
            "rows": [_rule_row(found, language) for found in in_force if found.industry == part.key],
        }
        for part in profile.industries
    ]
    context = {
        "profile_name": profile.name_en if language.startswith("en") else profile.name_zh,
        "version": profile.version,
        "effective": profile.effective,
        "general": general,
        "parts": [part for part in parts if part["rows"]],
        "calendar_gaps": calendar_gaps(profile=profile),
    }
    return render(request, "regulator/rules.html", context)


@regulator_only
@require_POST
def risk_compute_all(request):
    """Score every merchant of the jurisdiction in the background (``POST /regulator/risk/compute``)."""
    tasks.compute_risk_task.delay(regulator_id=request.user.pk)
    messages.success(request, _("Every merchant's risk is being recomputed in the background."))
    return redirect("web-regulator-dashboard")


# --- exports: the links on the list pages -----------------------------------------------------------


def _export_links(name: str, filters: dict[str, Any], rows: int) -> dict[str, Any]:
    """The CSV and Excel links of export ``name`` (API.md) carrying the page's filters, and the rows
    they hold (the page's own count of the same filters). The response streams, so the browser's
    download shows the progress of a large one."""
    query = urlencode({key: value for key, value in filters.items() if value not in (None, "")})
    suffix = f"?{query}" if query else ""
    return {
        "name": name,
        "csv": reverse(f"regulator-export-{name}-csv") + suffix,
        "xlsx": reverse(f"regulator-export-{name}-xlsx") + suffix,
        "rows": rows,
    }


# --- merchants -------------------------------------------------------------------------------------


class MerchantFilterForm(forms.Form):
    risk_level = forms.ChoiceField(label=gettext_lazy("Risk level"), required=False)
    district = forms.ChoiceField(label=gettext_lazy("District"), required=False)
    category = forms.ChoiceField(label=gettext_lazy("Category"), required=False)
    flagged = forms.ChoiceField(label=gettext_lazy("Flag"), required=False)
    ordering = forms.ChoiceField(label=gettext_lazy("Sort by"), required=False)

    def __init__(self, *args: Any, jurisdiction: Jurisdiction, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["risk_level"].choices = _with_blank(RiskLevel.choices, _("All levels"))
        self.fields["district"].choices = _district_choices(_("All districts"), jurisdiction)
        self.fields["category"].choices = _with_blank(
            _category_choices(Merchant.Category.choices, jurisdiction), _("All categories")
        )
        self.fields["flagged"].choices = [("", _("Flagged or not")), ("yes", _("Flagged")), ("no", _("Not flagged"))]
        self.fields["ordering"].choices = [
            (key, label) for key, label in ORDERING_LABELS.items() if key in risk_selectors.ORDERINGS
        ]
        for name, field in self.fields.items():
            field.widget.attrs["id"] = f"filter-{name}"


@regulator_only
@require_GET
def merchant_list(request):
    jurisdiction = jurisdiction_of(request.user)
    form = MerchantFilterForm(request.GET, jurisdiction=jurisdiction)
    form.is_valid()  # an unknown value is dropped (and shown as the field's error); the rest apply
    data = form.cleaned_data
    ordering = data.get("ordering") or "-risk_score"
    rows = risk_selectors.regulator_merchants(
        jurisdiction=jurisdiction,
        risk_level=data.get("risk_level") or None,
        district=data.get("district") or None,
        category=data.get("category") or None,
        flagged={"yes": True, "no": False}.get(data.get("flagged") or ""),
        ordering=ordering,
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    language = _language()
    for merchant in page.object_list:
        merchant.district_label = district_name(merchant.district, language) if merchant.district in DISTRICTS else ""
    export_filters = {
        "risk_level": data.get("risk_level"),
        "district": data.get("district"),
        "category": data.get("category"),
        "flagged": {"yes": "true", "no": "false"}.get(data.get("flagged") or ""),
    }
    context = {
        "form": form,
        "page": page,
        "ordering": ordering,
        "export": _export_links("merchants", export_filters, page.paginator.count),
    }
    return _partial_or_page(request, "regulator/merchant_list.html", "regulator/_merchant_results.html", context)


class ActionForm(forms.Form):
    action = forms.ChoiceField(label=gettext_lazy("Action"), choices=RegulatorAction.Action.choices)
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Recorded in the audit log with your name."),
    )
    warning = forms.CharField(
        label=gettext_lazy("Public warning (flag only)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy(
            "Shown to consumers with the merchant's products. Leave empty for the standard warning."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.widget.attrs["id"] = f"action-{name}"


def _signal_value(name: str, value: Any) -> str:
    """A signal's value as the regulator reads it: money in yuan, ratios in percent."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if name == "escrow_outstanding" and isinstance(value, int):
        return yuan(value)
    if name in RATIO_SIGNALS:
        return f"{round(value * 100)}%"
    if name == "sales_surge":
        return f"{value}×"
    if name == "months_owed":
        return _("%(months)s months") % {"months": value}
    return str(value)


def _signals(latest) -> list[dict[str, Any]]:
    if latest is None:
        return []
    language = _language()
    rows = []
    for signal in latest.signals:
        explanation = signal.get("explanation") or {}
        if isinstance(explanation, dict):
            explanation = explanation.get(language) or explanation.get("zh-hans") or ""
        # Older assessments kept the two languages side by side.
        explanation = explanation or signal.get("explanation_en" if language == "en" else "explanation_zh") or ""
        rows.append(
            {
                "name": signal["name"],
                "label": SIGNAL_NAMES.get(signal["name"], signal["name"]),
                "value": _signal_value(signal["name"], signal.get("value")),
                "weight": signal.get("weight"),
                "contribution": signal.get("contribution"),
                "explanation": explanation,
            }
        )
    return rows


def _merchant_page(request, merchant: Merchant, *, action_form: ActionForm | None = None, status: int = 200):
    language = _language()
    latest = risk_selectors.risk_latest(merchant=merchant)
    history = risk_selectors.risk_history(merchant=merchant)
    figures = (
        risk_selectors.regulator_merchants(jurisdiction=jurisdiction_of(request.user)).filter(pk=merchant.pk).first()
    )
    complaints = complaint_list(user=request.user, merchant_id=merchant.pk)
    context = {
        "merchant": merchant,
        "district": district_name(merchant.district, language) if merchant.district in DISTRICTS else "",
        "figures": figures,
        "latest": latest,
        "signals": _signals(latest),
        "history": history,
        "score_chart": charts.line_chart(
            [beijing_date(at) for at, _score, _level in history],
            [charts.Series(_("Risk score"), [score for _at, score, _level in history])],
            chart_id="chart-risk-history",
            title=_("Risk score over time"),
            y_max=100,
            positions=[int(at.timestamp()) for at, _score, _level in history],
        ),
        "actions": dashboard_selectors.merchant_actions_recent(merchant=merchant),
        "complaints": list(complaints[:MERCHANT_COMPLAINTS]),
        "complaints_total": complaints.count(),
        "action_form": action_form or ActionForm(),
    }
    return render(request, "regulator/merchant_detail.html", context, status=status)


@regulator_only
@require_GET
def merchant_detail(request, merchant_id):
    return _merchant_page(request, _merchant_or_404(request, merchant_id))


@regulator_only
@require_POST
def merchant_action(request, merchant_id):
    """The actions form: ``merchant_action_take``, then the action's own page to follow it."""
    merchant = _merchant_or_404(request, merchant_id)
    form = ActionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        taken = attempt(
            request,
            lambda: merchant_action_take(
                merchant_id=merchant.pk,
                actor_id=request.user.pk,
                action=data["action"],
                reason=data["reason"],
                warning=data["warning"] or None,
            ),
            success=_("Action recorded: %(action)s.") % {"action": RegulatorAction.Action(data["action"]).label},
            form=form,
        )
        if taken is not None:
            return redirect("web-regulator-action", action_id=taken.pk)
        if not form.errors:  # refused in the merchant's present state: the message says why
            return redirect("web-regulator-merchant", merchant_id=merchant.pk)
    return _merchant_page(request, merchant, action_form=form, status=400)


@regulator_only
@require_POST
def merchant_risk_compute(request, merchant_id):
    merchant = _merchant_or_404(request, merchant_id)
    if attempt(request, lambda: compute_risk(merchant_ids=[merchant.pk])) is not None:
        merchant.refresh_from_db()
        level = RiskLevel(merchant.risk_level).label if merchant.risk_level in RiskLevel.values else ""
        messages.success(
            request, _("Risk recomputed: %(score)s (%(level)s).") % {"score": merchant.risk_score, "level": level}
        )
    return redirect("web-regulator-merchant", merchant_id=merchant.pk)


@regulator_only
@require_GET
def merchant_report(request, merchant_id):
    """The audit report PDF, for a logged-in regulator (the API's ``report.pdf`` by session)."""
    try:
        pdf = audit_report_pdf(merchant_id=merchant_id, generated_by=request.user)
    except NotFound as exc:
        raise Http404 from exc
    audit_report_recorded(actor_id=request.user.pk, merchant_id=merchant_id)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="audit-report-{merchant_id}.pdf"'
    return response


# --- actions ---------------------------------------------------------------------------------------


def _action_context(request, action_id) -> dict[str, Any]:
    jurisdiction = jurisdiction_of(request.user)
    action = _or_404(lambda: risk_selectors.action_get(jurisdiction=jurisdiction, action_id=action_id))
    progress = risk_selectors.action_progress(action)
    notify_key = action_notify_key(action)
    notices = fanout_for_event(event_key=notify_key) if notify_key else None
    notices_finished = notices is None or notices.state in ("done", "failed")
    finished = action.state in (RegulatorAction.State.DONE, RegulatorAction.State.FAILED) and notices_finished
    return {
        "action": action,
        "progress": progress,
        "finished": finished,
        "refund_order": action.action == RegulatorAction.Action.ORDER_REFUNDS,
        # <progress> needs max > 0: an order with no card to refund is complete at once.
        "progress_max": progress["total"] or 1,
        "progress_value": progress["done"] if progress["total"] else (1 if finished else 0),
        "notices": notices,
        "notices_max": (notices.total or 1) if notices else 1,
        "notices_value": (notices.done if notices.total else int(notices_finished)) if notices else 0,
    }


@regulator_only
@require_GET
def action_detail(request, action_id):
    return render(request, "regulator/action_detail.html", _action_context(request, action_id))


@regulator_only
@require_GET
def action_status(request, action_id):
    """The action's state and progress alone: what the action page polls until it is finished."""
    response = render(request, "regulator/_action_status.html", _action_context(request, action_id))
    response["Cache-Control"] = "no-store"
    return response


# --- complaints ------------------------------------------------------------------------------------


class ComplaintFilterForm(forms.Form):
    state = forms.ChoiceField(label=gettext_lazy("State"), required=False)
    district = forms.ChoiceField(label=gettext_lazy("District"), required=False)
    category = forms.ChoiceField(label=gettext_lazy("Category"), required=False)
    source = forms.ChoiceField(label=gettext_lazy("Source"), required=False)
    merchant = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, jurisdiction: Jurisdiction, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = _with_blank(Complaint.State.choices, _("All states"))
        self.fields["district"].choices = _district_choices(_("All districts"), jurisdiction)
        self.fields["category"].choices = _with_blank(Complaint.Category.choices, _("All categories"))
        self.fields["source"].choices = _with_blank(Complaint.Source.choices, _("All sources"))
        for name, field in self.fields.items():
            field.widget.attrs["id"] = f"complaint-filter-{name}"


class HotlineForm(OnceForm):
    merchant = forms.CharField(
        label=gettext_lazy("Merchant"),
        max_length=64,
        help_text=gettext_lazy("Its unified social credit code (licence number) or its id."),
    )
    category = forms.ChoiceField(label=gettext_lazy("Category"), choices=Complaint.Category.choices)
    description = forms.CharField(label=gettext_lazy("What the caller says"), max_length=5000, widget=forms.Textarea)
    urgent = forms.BooleanField(label=gettext_lazy("Urgent"), required=False)
    hotline_reference = forms.CharField(label=gettext_lazy("12345 work order number"), max_length=64, required=False)
    received_at = forms.DateTimeField(
        label=gettext_lazy("Call received at (Beijing time)"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=gettext_lazy("Leave empty for now. The deadline runs from the call."),
    )
    card = forms.UUIDField(label=gettext_lazy("Card id (optional)"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["urgent"].help_text = _("The merchant must answer within %(hours)s hours.") % {
            "hours": complaint_response_rule(urgent=True).value
        }
        for name, field in self.fields.items():
            field.widget.attrs["id"] = f"hotline-{name}"


class CloseForm(forms.Form):
    resolution = forms.CharField(
        label=gettext_lazy("Resolution"), max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    upheld = forms.BooleanField(required=False)


class CardRefundForm(OnceForm):
    """The regulator refunds one card of a merchant in default (``regulator_card_refund``)."""

    note = forms.CharField(max_length=2000, required=False)


def _complaints_page(request, *, hotline_form: HotlineForm | None = None, status: int = 200):
    filters = ComplaintFilterForm(request.GET, jurisdiction=jurisdiction_of(request.user))
    filters.is_valid()
    data = filters.cleaned_data
    merchant = None
    if data.get("merchant"):
        merchant = _merchant_or_404(request, data["merchant"])
    rows = dashboard_selectors.complaint_queue(
        user=request.user,
        merchant_id=merchant.pk if merchant else None,
        state=data.get("state") or None,
        district=data.get("district") or None,
        category=data.get("category") or None,
        source=data.get("source") or None,
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    language = _language()
    for complaint in page.object_list:
        code = complaint.merchant.district
        complaint.district_label = district_name(code, language) if code in DISTRICTS else ""
    refundable = cards_refundable_for_default(
        card_ids=[complaint.card_id for complaint in page.object_list if complaint.card_id]
    )
    for complaint in page.object_list:
        complaint.card_refundable = complaint.card_id in refundable
    initial = {"merchant": merchant.license_number} if merchant else None
    context = {
        "filters": filters,
        "merchant": merchant,
        "page": page,
        "hotline_form": hotline_form or HotlineForm(initial=initial),
        "refund_form": CardRefundForm(),
        "now": clock.now(),
        "export": _export_links(
            "complaints",
            {
                "merchant": merchant.pk if merchant else None,
                **{key: data.get(key) for key in ("state", "district", "category", "source")},
            },
            page.paginator.count,
        ),
    }
    return _partial_or_page(
        request, "regulator/complaints.html", "regulator/_complaint_results.html", context, status=status
    )


@regulator_only
@require_http_methods(["GET", "POST"])
def complaints(request):
    """The queue (GET) and a hotline call entered by staff (POST)."""
    if request.method == "GET":
        return _complaints_page(request)
    form = HotlineForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        # A licence number is looked up; anything else goes to the service, which refuses unknown ids.
        merchant_id = (
            dashboard_selectors.merchant_id_by_reference(
                jurisdiction=jurisdiction_of(request.user), value=data["merchant"]
            )
            or data["merchant"]
        )
        complaint = attempt(
            request,
            lambda: complaint_file(
                actor=request.user,
                merchant_id=merchant_id,
                card_id=data["card"],
                category=data["category"],
                description=data["description"],
                source=Complaint.Source.HOTLINE,
                urgent=data["urgent"],
                hotline_reference=data["hotline_reference"] or None,
                received_at=data["received_at"],
                idempotency_key=form.idempotency_key(request, form="hotline"),
            ),
            success=_("The hotline call is entered. The merchant has been given its deadline."),
            form=form,
        )
        if complaint is not None:
            return redirect(f"{reverse('web-regulator-complaints')}#complaint-{complaint.pk}")
    return _complaints_page(request, hotline_form=form, status=400)


@regulator_only
@require_POST
def complaint_close_view(request, complaint_id):
    _or_404(lambda: complaint_get(user=request.user, complaint_id=complaint_id))  # of the jurisdiction
    form = CloseForm(request.POST)
    back = next_url(request, reverse("web-regulator-complaints"))
    if not form.is_valid():
        messages.error(request, _("Write the resolution before closing the complaint."))
        return redirect(back)
    attempt(
        request,
        lambda: complaint_close(
            complaint_id=complaint_id,
            regulator=request.user,
            resolution=form.cleaned_data["resolution"],
            upheld=form.cleaned_data["upheld"],
        ),
        success=_("The complaint is closed."),
    )
    return redirect(back)


@regulator_only
@require_POST
def card_refund_view(request, card_id):
    """Refund one card in full because its merchant is in default (the complaint page's button)."""
    _or_404(lambda: card_get(user=request.user, card_id=card_id))  # of the jurisdiction
    form = CardRefundForm(request.POST)
    back = next_url(request, reverse("web-regulator-complaints"))
    if not form.is_valid():
        messages.error(request, _("The note is too long."))
        return redirect(back)
    attempt(
        request,
        lambda: regulator_card_refund(regulator=request.user, card_id=card_id, note=form.cleaned_data["note"]),
        success=_("The card is refunded in full, without a fee. The money is on its way to its holder."),
    )
    return redirect(back)


# --- refunds late or failed ------------------------------------------------------------------------


@regulator_only
@require_GET
def refunds_attention(request):
    """Failed refunds and refunds unpaid past their deadline, oldest deadline first, to send again."""
    refunds = regulator_refunds_needing_attention(jurisdiction=jurisdiction_of(request.user))
    page = Paginator(refunds, PAGE_SIZE).get_page(request.GET.get("page"))
    now = clock.now()
    for refund in page.object_list:
        refund.age = now - refund.created_at
    exports_shown = [
        _export_links(
            "refunds", {"overdue": "true"}, export_count(name="refunds", params={"overdue": "true"}, user=request.user)
        ),
        _export_links("refunds", {}, export_count(name="refunds", params={}, user=request.user)),
    ]
    return render(request, "regulator/refunds.html", {"page": page, "now": now, "exports": exports_shown})


@regulator_only
@require_POST
def refund_retry_view(request, refund_id):
    if not regulator_refunds(jurisdiction=jurisdiction_of(request.user)).filter(pk=refund_id).exists():
        raise Http404
    attempt(
        request,
        lambda: regulator_refund_retry(refund_id=refund_id, actor_id=request.user.pk),
        success=_("The refund is sent to the bank again, under its first key: it is paid once."),
    )
    return redirect(next_url(request, reverse("web-regulator-refunds")))


class StatsForm(forms.Form):
    month = forms.CharField(
        label=gettext_lazy("Month"),
        required=False,
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM", "pattern": r"\d{4}-\d{2}"}),
    )
    district = forms.ChoiceField(label=gettext_lazy("District"), required=False)
    category = forms.ChoiceField(label=gettext_lazy("Category"), required=False)

    def __init__(self, *args: Any, jurisdiction: Jurisdiction, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["district"].choices = _district_choices(_("All districts"), jurisdiction)
        self.fields["category"].choices = _with_blank(Complaint.Category.choices, _("All categories"))
        for name, field in self.fields.items():
            field.widget.attrs["id"] = f"stats-{name}"

    def clean_month(self) -> date | None:
        value = (self.cleaned_data.get("month") or "").strip()
        if not value:
            return None
        try:
            first = datetime.strptime(value, "%Y-%m").date()  # noqa: DTZ007 - a calendar month, no time
        except ValueError as exc:
            raise forms.ValidationError(_("A month as YYYY-MM.")) from exc
        if not 1970 <= first.year <= 9998:
            raise forms.ValidationError(_("A month as YYYY-MM."))
        return first


@regulator_only
@require_GET
def complaint_statistics(request):
    form = StatsForm(request.GET, jurisdiction=jurisdiction_of(request.user))
    form.is_valid()
    data = form.cleaned_data
    stats = complaint_stats(
        user=request.user,
        month=data.get("month"),
        district=data.get("district") or None,
        category=data.get("category") or None,
    )
    categories = dict(Complaint.Category.choices)
    for row in stats["by_category"] + stats["top_categories"] + stats["top_pairs"]:
        row["label"] = categories.get(row["category"], row["category"])
    for row in stats["top_categories"]:
        row["share_percent"] = f"{row['share'] * 100:.1f}%"  # a share of complaints, not money
    context = {
        "form": form,
        "stats": stats,
        "district_chart": charts.bar_chart(
            [(row["district_name"], row["count"]) for row in stats["by_district"]],
            chart_id="chart-complaints-by-district",
            title=_("Complaints by district, last 12 months"),
        ),
        "category_chart": charts.bar_chart(
            [(str(row["label"]), row["count"]) for row in stats["by_category"]],
            chart_id="chart-complaints-by-category",
            title=_("Complaints by category, last 12 months"),
        ),
        "month_chart": charts.line_chart(
            [row["month"] for row in stats["by_month"]],
            [
                charts.Series(_("Complaints"), [row["count"] for row in stats["by_month"]]),
                charts.Series(_("Went overdue"), [row["overdue"] for row in stats["by_month"]]),
            ],
            chart_id="chart-complaints-by-month",
            title=_("Complaints by month"),
            partial=charts.current_month_note(stats["by_month"][-1]["month"]) if stats["by_month"] else "",
        ),
    }
    return render(request, "regulator/complaint_stats.html", context)


# --- audit log -------------------------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind of entry"), required=False)
    merchant = forms.CharField(
        label=gettext_lazy("Merchant"),
        required=False,
        max_length=64,
        help_text=gettext_lazy("Its licence number or id."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [
            ("", _("Actions and money")),
            ("action", _("Regulator actions and decisions")),
            ("journal", _("Money movements (journal)")),
        ]
        for name, field in self.fields.items():
            field.widget.attrs["id"] = f"audit-{name}"


@regulator_only
@require_GET
def audit_log(request):
    form = AuditFilterForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    jurisdiction = jurisdiction_of(request.user)
    merchant = None
    if data.get("merchant"):
        merchant_id = dashboard_selectors.merchant_id_by_reference(jurisdiction=jurisdiction, value=data["merchant"])
        if merchant_id is None:
            form.add_error("merchant", _("No merchant has this id or licence number."))
        else:
            merchant = risk_selectors.merchant_get(jurisdiction=jurisdiction, merchant_id=merchant_id)
    rows: list[dict[str, Any]] = []
    page = None
    if not form.errors:
        keys = audit_selectors.audit_log_keys(
            jurisdiction=jurisdiction, reader_id=request.user.pk, kind=data.get("kind") or None, merchant=merchant
        )
        page = Paginator(keys, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
        rows = audit_selectors.audit_log_rows(list(page.object_list))
        names = dashboard_selectors.merchant_names([row["merchant"] for row in rows if row["merchant"]])
        audit_selectors.audit_rows_in_words(rows)
        for row in rows:
            row["merchant_name"] = names.get(row["merchant"] or "", "")
    context = {"form": form, "page": page, "rows": rows, "merchant": merchant}
    return _partial_or_page(request, "regulator/audit_log.html", "regulator/_audit_results.html", context)


# --- ledger ----------------------------------------------------------------------------------------


def _ledger_context(request) -> dict[str, Any]:
    check = LedgerCheck.objects.order_by("-created_at", "-pk").first()
    return {
        "journal_export": _export_links("journal", {}, export_count(name="journal", params={}, user=request.user)),
        "journal_codes": JournalEntry.Code.choices,
        "head": dashboard_selectors.ledger_head(),
        "result": check,
        "ok": check.ok if check else None,
        "verified_at": check.created_at if check else None,
    }


@regulator_only
@require_http_methods(["GET", "POST"])
def ledger(request):
    """GET: the head hash now and the newest kept verification (nightly, or someone's "verify now").
    POST ("verify now"): verify the whole journal now and keep the result (``ledger_check_run``)."""
    if request.method == "POST":
        ledger_check_run()
        if not _is_htmx(request):
            return redirect("web-regulator-ledger")
    return _partial_or_page(request, "regulator/ledger.html", "regulator/_ledger_result.html", _ledger_context(request))


# --- filings (备案) ----------------------------------------------------------------------------------


class FilingFilterForm(forms.Form):
    state = forms.ChoiceField(label=gettext_lazy("State"), required=False)
    overdue = forms.ChoiceField(
        label=gettext_lazy("Overdue"),
        required=False,
        choices=[("", gettext_lazy("All")), ("1", gettext_lazy("Overdue only")), ("0", gettext_lazy("Not overdue"))],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = _with_blank(Filing.State.choices, _("All states"))


class FilingDecisionForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Note to the merchant"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Required when returning the filing: say what the merchant must correct."),
    )


@regulator_only
@require_GET
def filings(request):
    """Filings, the earliest deadline first, by state and overdue."""
    form = FilingFilterForm(request.GET or None)
    state, overdue = None, None
    if form.is_valid():
        state = form.cleaned_data["state"] or None
        overdue = {"1": True, "0": False}.get(form.cleaned_data["overdue"])
    rows = regulator_filings(jurisdiction=jurisdiction_of(request.user), state=state, overdue=overdue)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "regulator/filings.html", {"form": form, "page": page})


def _filing_page(request, filing_id, *, form: FilingDecisionForm | None = None, status: int = 200):
    jurisdiction = jurisdiction_of(request.user)
    filing = _or_404(lambda: regulator_filing_get(jurisdiction=jurisdiction, filing_id=filing_id))
    context = {
        "filing": filing,
        "documents": filing_documents(filing=filing),
        "form": form or FilingDecisionForm(),
    }
    return render(request, "regulator/filing_detail.html", context, status=status)


@regulator_only
@require_GET
def filing_detail(request, filing_id):
    return _filing_page(request, filing_id)


@regulator_only
@require_POST
def filing_decide(request, filing_id):
    """Accept or return a submitted filing (the button pressed says which)."""
    jurisdiction = jurisdiction_of(request.user)
    _or_404(lambda: regulator_filing_get(jurisdiction=jurisdiction, filing_id=filing_id))
    form = FilingDecisionForm(request.POST)
    if not form.is_valid():
        return _filing_page(request, filing_id, form=form, status=400)
    note = form.cleaned_data["note"]
    if request.POST.get("decision") == "return":
        decided = attempt(
            request,
            lambda: regulator_filing_return(filing_id=filing_id, regulator=request.user, note=note),
            success=_("The filing is returned to the merchant with your note."),
            form=form,
        )
    else:
        decided = attempt(
            request,
            lambda: regulator_filing_accept(filing_id=filing_id, regulator=request.user, note=note),
            success=_("The filing is accepted: consumers now see the merchant as filed."),
            form=form,
        )
    if decided is None:
        return _filing_page(request, filing_id, form=form, status=409 if not form.errors else 400)
    return redirect("web-regulator-filing", filing_id=filing_id)


# --- periodic reports ----------------------------------------------------------------------------------

REPORT_MONTHS = 24  # months offered in the form, this one first
REPORT_QUARTERS = 8


def _period_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    language = _language()
    months = periods_recent(kind=MONTH, count=REPORT_MONTHS)
    quarters = periods_recent(kind=QUARTER, count=REPORT_QUARTERS)
    return [
        (_("Months"), [(f"{p.kind}-{p.year}-{p.number}", period_label(p, language)) for p in months]),
        (_("Quarters"), [(f"{p.kind}-{p.year}-{p.number}", period_label(p, language)) for p in quarters]),
    ]


class PeriodicReportForm(forms.Form):
    period = forms.ChoiceField(label=gettext_lazy("Month or quarter"))
    regenerate = forms.BooleanField(
        label=gettext_lazy("Generate it again if it was made before"),
        required=False,
        help_text=gettext_lazy("Otherwise the report already made is shown."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["period"].choices = _period_choices()
        last_month = periods_recent(kind=MONTH, count=2)[1]
        self.fields["period"].initial = f"{last_month.kind}-{last_month.year}-{last_month.number}"
        for name, field in self.fields.items():
            field.widget.attrs["id"] = f"report-{name}"

    def clean_period(self) -> Period:
        kind, year, number = self.cleaned_data["period"].split("-")
        return period_parse(kind=kind, year=int(year), number=int(number))


def _jurisdiction_words(districts: list[str] | None, categories: list[str] | None) -> str:
    """The jurisdiction in the page's language: 全市 / Whole city, or its districts (and trades)."""
    language = _language()
    if not language.startswith("en"):
        return jurisdiction_label(districts, categories)
    where = (
        ", ".join(district_name(code, language) if code in DISTRICTS else code for code in districts)
        if districts is not None
        else _("Whole city")
    )
    if categories is None:
        return where
    names = dict(Merchant.Category.choices)
    return f"{where} ({', '.join(str(names.get(code, code)) for code in categories)})"


def _report_row(report) -> dict[str, Any]:
    """What the pages show of one report (its figures aside)."""
    language = _language()
    files = {file.kind: file for file in report.files.all()} if report.state == "done" else {}
    period = Period(report.period, report.year, report.number)
    return {
        "report": report,
        "label": period_label(period, language),
        "first_day": period.first_day,
        "last_day": period.last_day,
        "jurisdiction": _jurisdiction_words(report.districts, report.categories),
        "requested_by": report.requested_by.get_username() if report.requested_by_id else _("the scheduled job"),
        "progress": periodic_report_progress(report),
        "finished": report.state in ("done", "failed"),
        "files": files,
    }


def _report_or_404(request, report_id):
    try:
        return periodic_report_get(user=request.user, report_id=report_id)
    except NotFound as exc:
        raise Http404 from exc


@regulator_only
@require_http_methods(["GET", "POST"])
def periodic_reports(request):
    """The periodic reports of the regulator's jurisdiction, newest first, and the form that
    generates one (``periodic_report_generate``); POST goes on to the report's page, which follows it."""
    form = PeriodicReportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            report = attempt(
                request,
                lambda: periodic_report_generate(
                    jurisdiction=jurisdiction_of(request.user),
                    period=form.cleaned_data["period"],
                    requested_by=request.user,
                    regenerate=form.cleaned_data["regenerate"],
                ),
                form=form,
            )
            if report is not None:
                return redirect("web-regulator-report", report_id=report.pk)
        status = 400
    page = Paginator(periodic_reports_for(user=request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "rows": [_report_row(report) for report in page.object_list],
        "jurisdiction": _jurisdiction_words(*_jurisdiction_lists(jurisdiction_of(request.user))),
    }
    return render(request, "regulator/reports.html", context, status=status)


def _jurisdiction_lists(jurisdiction) -> tuple[list[str] | None, list[str] | None]:
    return (
        None if jurisdiction.districts is None else sorted(jurisdiction.districts),
        None if jurisdiction.categories is None else sorted(jurisdiction.categories),
    )


def _report_summary(report) -> list[tuple[str, str]]:
    """The headline figures of a finished report, in the page's words."""
    figures = report.figures
    escrow = periodic_figures.totals(figures["escrow"], periodic_figures.ESCROW_FIELDS)
    complaints = periodic_figures.totals(figures["complaints"], periodic_figures.COMPLAINT_FIELDS)
    refunds = periodic_figures.totals(figures["refunds"], periodic_figures.REFUND_FIELDS)
    riskiest = figures["riskiest"]
    return [
        (_("Escrow held at the end"), yuan(escrow["held_end"])),
        (_("Paid into escrow"), yuan(escrow["paid_in"])),
        (_("Released to merchants"), yuan(escrow["released"])),
        (_("Refunded to consumers"), yuan(escrow["refunded"])),
        (
            _("Complaints"),
            _("%(count)s, answered on time: %(rate)s")
            % {
                "count": complaints["count"],
                "rate": rate(complaints["on_time"], complaints["count"] - complaints["pending"]),
            },
        ),
        (
            _("Refunds"),
            _("%(count)s, %(amount)s, paid on time: %(rate)s")
            % {
                "count": refunds["count"],
                "amount": yuan(refunds["amount"]),
                "rate": rate(refunds["on_time"], refunds["count"] - refunds["pending"]),
            },
        ),
        (
            _("Filings required"),
            _("%(required)s, filed in the period: %(submitted)s")
            % {"required": figures["filings"]["required"], "submitted": figures["filings"]["submitted"]},
        ),
        (
            _("Riskiest merchant"),
            f"{riskiest[0]['name']} ({riskiest[0]['score']})" if riskiest else _("no assessment yet"),
        ),
    ]


# --- changes of operator --------------------------------------------------------------------------


class OperatorChangeFilterForm(forms.Form):
    state = forms.ChoiceField(label=gettext_lazy("State"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["state"].choices = _with_blank(OperatorChange.State.choices, _("All states"))


class OperatorChangeDecisionForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Note to the merchant"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Required when rejecting: say why."),
    )


@regulator_only
@require_GET
def operator_changes(request):
    """Changes of operator in the regulator's jurisdiction, those awaiting a decision first."""
    form = OperatorChangeFilterForm(request.GET or None)
    state = None
    if form.is_valid():
        state = form.cleaned_data["state"] or None
    rows = operator_changes_for_regulator(merchants=jurisdiction_of(request.user).merchants(), state=state)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "regulator/operator_changes.html", {"form": form, "page": page})


def _operator_change_page(request, change_id, *, form: OperatorChangeDecisionForm | None = None, status: int = 200):
    try:
        change = regulator_operator_change_get(regulator=request.user, change_id=change_id)
    except NotFound as exc:
        raise Http404 from exc
    context = {
        "change": change,
        "refunds": operator_change_refund_job(operator_change_id=change.pk),
        "form": form or OperatorChangeDecisionForm(),
    }
    return render(request, "regulator/operator_change_detail.html", context, status=status)


@regulator_only
@require_GET
def periodic_report_detail(request, report_id):
    report = _report_or_404(request, report_id)
    context = {**_report_row(report), "summary": _report_summary(report) if report.state == "done" else []}
    return render(request, "regulator/report_detail.html", context)


@regulator_only
@require_GET
def periodic_report_status(request, report_id):
    """One report's state, progress and downloads: what its page polls until it is finished."""
    response = render(request, "regulator/_report_status.html", _report_row(_report_or_404(request, report_id)))
    response["Cache-Control"] = "no-store"
    return response


@regulator_only
@require_GET
def periodic_report_file_download(request, report_id, kind: str):
    try:
        report, file = periodic_report_file(user=request.user, report_id=report_id, kind=kind)
    except NotFound as exc:
        raise Http404 from exc
    except ReportNotReady as exc:
        raise Http404 from exc
    return periodic_report_download(report, file)


@regulator_only
@require_GET
def operator_change_detail(request, change_id):
    return _operator_change_page(request, change_id)


@regulator_only
@require_POST
def operator_change_decide(request, change_id):
    """Approve or reject a requested change of operator (the button pressed says which)."""
    form = OperatorChangeDecisionForm(request.POST)
    if not form.is_valid():
        return _operator_change_page(request, change_id, form=form, status=400)
    note = form.cleaned_data["note"]
    if request.POST.get("decision") == "reject":
        if not note.strip():
            form.add_error("note", _("Say why the change is rejected."))
            return _operator_change_page(request, change_id, form=form, status=400)
        decided = attempt(
            request,
            lambda: regulator_operator_change_reject(regulator=request.user, change_id=change_id, note=note),
            success=_("The change of operator is rejected; the merchant sees your note."),
            form=form,
        )
    else:
        decided = attempt(
            request,
            lambda: regulator_operator_change_approve(regulator=request.user, change_id=change_id, note=note),
            success=_("The change of operator is approved: every consumer with money on a card is being asked."),
            form=form,
        )
    if decided is None:
        return _operator_change_page(request, change_id, form=form, status=409 if not form.errors else 400)
    return redirect("web-regulator-operator-change", change_id=change_id)
