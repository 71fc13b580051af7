"""The regulator's reports: the audit report of one merchant (API.md, Regulator: ``report.pdf``) and
the periodic report of the regulator's jurisdiction for a month or a quarter
(``/api/v1/regulator/reports/periodic``: list, generate → 202 and follow it, its PDF and XLSX)."""

from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import get_language
from drf_spectacular.utils import OpenApiResponse, OpenApiTypes, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from core.fields import CurrencyField
from core.permissions import IsRegulator
from regulator.exports import XLSX_CONTENT_TYPE
from regulator.models import PeriodicReport, PeriodicReportFile
from regulator.reports.audit import audit_report_pdf
from regulator.reports.periodic_text import report_filename
from regulator.reports.periods import Period, period_label, period_parse
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.selectors.periodic_reports import (
    periodic_report_file,
    periodic_report_get,
    periodic_report_progress,
    periodic_reports_for,
)
from regulator.services.audit import audit_report_recorded
from regulator.services.periodic_reports import periodic_report_generate


class MerchantAuditReportApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_merchant_report_pdf",
        responses={
            (200, "application/pdf"): bytes,
            404: OpenApiResponse(ErrorSerializer, description="not_found"),
        },
    )
    def get(self, request, merchant_id):
        pdf = audit_report_pdf(merchant_id=merchant_id, generated_by=request.user)
        audit_report_recorded(actor_id=request.user.pk, merchant_id=merchant_id)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="audit-report-{merchant_id}.pdf"'
        return response


# --- the periodic report of a jurisdiction ------------------------------------------------------------


def _language() -> str:
    return "en" if (get_language() or "").startswith("en") else "zh-hans"


class PeriodicReportOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    period = serializers.CharField(help_text="month or quarter")
    year = serializers.IntegerField()
    number = serializers.IntegerField(help_text="The month (1-12) or the quarter (1-4).")
    label = serializers.SerializerMethodField(
        help_text="2026年11月 / 2026年第3季度 (November 2026 / Q3 2026 in English)"
    )
    starts_at = serializers.DateTimeField(help_text="00:00 Beijing time on the period's first day")
    ends_at = serializers.DateTimeField(help_text="00:00 Beijing time on the next period's first day (excluded)")
    jurisdiction = serializers.SerializerMethodField(
        help_text='{"districts": "all" or [codes], "categories": "all" or [categories]}'
    )
    generation = serializers.IntegerField(help_text="1, then one more each time a regulator has it generated again")
    state = serializers.CharField(help_text="queued, running, done or failed")
    progress = serializers.SerializerMethodField(help_text="{done, total}: steps of the report")
    detail = serializers.CharField(help_text="Why it failed, when it did.")
    requested_by = serializers.SerializerMethodField(help_text="The regulator who asked; null: the scheduled job.")
    as_of = serializers.DateTimeField(allow_null=True, help_text="When its figures were read.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    files = serializers.SerializerMethodField(help_text='{"pdf": {url, size, sha256} or null, "xlsx": ...}')
    currency = CurrencyField()

    def get_label(self, report: PeriodicReport) -> str:
        return period_label(Period(report.period, report.year, report.number), _language())

    def get_jurisdiction(self, report: PeriodicReport) -> dict[str, Any]:
        return {
            "districts": "all" if report.districts is None else report.districts,
            "categories": "all" if report.categories is None else report.categories,
        }

    def get_progress(self, report: PeriodicReport) -> dict[str, int]:
        return periodic_report_progress(report)

    def get_requested_by(self, report: PeriodicReport) -> str | None:
        return report.requested_by.get_username() if report.requested_by_id else None

    def get_files(self, report: PeriodicReport) -> dict[str, dict[str, Any] | None]:
        done = report.state == PeriodicReport.State.DONE
        found = {file.kind: file for file in report.files.all()} if done else {}
        request = self.context.get("request")
        files: dict[str, dict[str, Any] | None] = {}
        for kind in PeriodicReportFile.Kind.values:
            file = found.get(kind)
            if file is None:
                files[kind] = None
                continue
            url = reverse(f"regulator-periodic-report-{kind}", args=[report.pk])
            files[kind] = {
                "url": request.build_absolute_uri(url) if request is not None else url,
                "size": file.size,
                "sha256": file.sha256,
            }
        return files


class PeriodicReportDetailOutputSerializer(PeriodicReportOutputSerializer):
    figures = serializers.JSONField(
        help_text="The sections computed so far (escrow, filings, complaints, refunds, riskiest); money in fen."
    )


class PeriodicReportListApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        period = serializers.ChoiceField(choices=PeriodicReport.Period.choices)
        year = serializers.IntegerField()
        number = serializers.IntegerField(help_text="The month (1-12) or the quarter (1-4).")
        regenerate = serializers.BooleanField(
            default=False, help_text="Generate it again even if it was made (a new generation)."
        )

    @extend_schema(
        operation_id="regulator_periodic_report_list",
        responses={200: PeriodicReportOutputSerializer(many=True)},
    )
    def get(self, request):
        reports = periodic_reports_for(user=request.user)
        return paginated_response(
            view=self,
            request=request,
            queryset=reports,
            serializer=lambda page, many: PeriodicReportOutputSerializer(page, many=many, context={"request": request}),
        )

    @extend_schema(
        operation_id="regulator_periodic_report_generate",
        request=InputSerializer,
        responses={202: PeriodicReportOutputSerializer, 400: ErrorSerializer},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        period = period_parse(kind=values["period"], year=values["year"], number=values["number"])
        report = periodic_report_generate(
            jurisdiction=jurisdiction_of(request.user),
            period=period,
            requested_by=request.user,
            regenerate=values["regenerate"],
        )
        report = periodic_report_get(user=request.user, report_id=report.pk)
        body = PeriodicReportOutputSerializer(report, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED)


class PeriodicReportDetailApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_periodic_report",
        responses={200: PeriodicReportDetailOutputSerializer, 404: ErrorSerializer},
    )
    def get(self, request, report_id):
        report = periodic_report_get(user=request.user, report_id=report_id)
        return Response(PeriodicReportDetailOutputSerializer(report, context={"request": request}).data)


CONTENT_TYPES = {PeriodicReportFile.Kind.PDF: "application/pdf", PeriodicReportFile.Kind.XLSX: XLSX_CONTENT_TYPE}


def periodic_report_download(report: PeriodicReport, file: PeriodicReportFile) -> HttpResponse:
    """The file as a download named for its period and jurisdiction, with its SHA-256 in a header."""
    period = Period(report.period, report.year, report.number)
    response = HttpResponse(bytes(file.content), content_type=CONTENT_TYPES[file.kind])
    name = report_filename(slug=period.slug, jurisdiction_key=report.jurisdiction_key, kind=file.kind)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Content-SHA256"] = file.sha256
    response["Cache-Control"] = "private, no-store"
    return response


class PeriodicReportFileApi(APIView):
    permission_classes = [IsRegulator]
    kind = ""

    def download(self, request, report_id):
        report, file = periodic_report_file(user=request.user, report_id=report_id, kind=self.kind)
        return periodic_report_download(report, file)


class PeriodicReportPdfApi(PeriodicReportFileApi):
    kind = PeriodicReportFile.Kind.PDF

    @extend_schema(
        operation_id="regulator_periodic_report_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The report as a PDF."),
            404: ErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="report_not_ready"),
        },
    )
    def get(self, request, report_id):
        return self.download(request, report_id)


class PeriodicReportXlsxApi(PeriodicReportFileApi):
    kind = PeriodicReportFile.Kind.XLSX

    @extend_schema(
        operation_id="regulator_periodic_report_xlsx",
        responses={
            (200, XLSX_CONTENT_TYPE): OpenApiResponse(OpenApiTypes.BINARY, description="The report as XLSX."),
            404: ErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="report_not_ready"),
        },
    )
    def get(self, request, report_id):
        return self.download(request, report_id)
