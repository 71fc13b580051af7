"""The regulator's audit report of one merchant (API.md, Regulator: ``report.pdf``)."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from core.api import ErrorSerializer
from core.permissions import IsRegulator
from regulator.reports.audit import audit_report_pdf
from regulator.services.audit import audit_report_recorded


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
