"""Reads of the periodic reports: which a regulator sees, one report, one of its files.

A regulator sees the reports of their own jurisdiction; one whose jurisdiction is the whole city sees
every report (each district's too). Anything else answers "not found", as a missing report does.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet

from core.errors import NotFound
from regulator.errors import ReportNotReady
from regulator.models import PeriodicReport, PeriodicReportFile
from regulator.selectors.jurisdiction import Jurisdiction, jurisdiction_of


def jurisdiction_key(jurisdiction: Jurisdiction) -> str:
    """The jurisdiction as one canonical string: ``all``, or ``districts=…;categories=…`` sorted."""
    parts = []
    if jurisdiction.districts is not None:
        parts.append("districts=" + ",".join(sorted(set(jurisdiction.districts))))
    if jurisdiction.categories is not None:
        parts.append("categories=" + ",".join(sorted(set(jurisdiction.categories))))
    return ";".join(parts) or "all"


def periodic_reports_for(*, user) -> QuerySet[PeriodicReport]:
    """The reports ``user`` sees, newest first, with who asked and their files' particulars (not
    their contents)."""
    reports = (
        PeriodicReport.objects.select_related("requested_by")
        .prefetch_related(Prefetch("files", queryset=PeriodicReportFile.objects.defer("content").order_by("kind")))
        .order_by("-created_at", "-pk")
    )
    if getattr(user, "role", None) != "regulator":
        return reports.none()
    jurisdiction = jurisdiction_of(user)
    if jurisdiction.city_wide:
        return reports
    return reports.filter(jurisdiction_key=jurisdiction_key(jurisdiction))


def periodic_report_get(*, user, report_id: Any) -> PeriodicReport:
    try:
        return periodic_reports_for(user=user).get(pk=report_id)
    except (PeriodicReport.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound() from exc


def periodic_report_file(*, user, report_id: Any, kind: str) -> tuple[PeriodicReport, PeriodicReportFile]:
    """The report and its ``pdf`` or ``xlsx`` file; ``ReportNotReady`` until the report is done."""
    report = periodic_report_get(user=user, report_id=report_id)
    found = PeriodicReportFile.objects.filter(report=report, kind=kind).first()
    if report.state != PeriodicReport.State.DONE or found is None:
        raise ReportNotReady()
    return report, found


def periodic_report_progress(report: PeriodicReport) -> dict[str, int]:
    return {"done": report.done, "total": report.total}
