"""Filing (备案) for the merchant: its status and the filing form (multipart, with documents); a
filing document for its merchant or the regulator.

(A module of its own while ``merchants/api.py`` is being reworked; it folds in there.)"""

from __future__ import annotations

from django.http import FileResponse
from django.utils.translation import get_language
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer
from core.parsers import StrictJSONParser
from core.permissions import IsMerchant
from core.rules import rules_active
from merchants import selectors
from merchants.models import Filing, FilingDocument
from merchants.selectors_filing import (
    filing_document_get,
    filing_documents,
    merchant_filing_current,
    merchant_filing_status,
)
from merchants.services.filing import filing_submit

STATUSES = ["filed", "not_filed", "not_required"]


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class FilingDocumentSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = FilingDocument
        fields = ["id", "name", "size", "content_type", "submission", "uploaded_at", "url"]

    def get_url(self, document: FilingDocument) -> str:
        return f"/api/v1/filings/documents/{document.pk}"


class FilingTriggerSerializer(serializers.Serializer):
    rule = serializers.CharField(source="trigger", help_text="The rules-profile rule that was met.")
    measured = serializers.IntegerField(help_text="The merchant's figure that met it, in the rule's unit.")
    threshold = serializers.IntegerField(help_text="The rule's value when it was met.")
    unit = serializers.CharField(help_text="fen or cards")
    basis = serializers.SerializerMethodField(help_text="The provision the rule comes from, in the request's language.")

    def get_basis(self, filing: Filing) -> str:
        profile = rules_active()
        if profile.key != filing.profile:
            return ""
        try:
            return profile.rule(filing.trigger, category=filing.merchant.category).basis(get_language())
        except KeyError:
            return ""


class FilingSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    merchant = serializers.CharField(source="merchant_id")
    merchant_name = serializers.CharField(source="merchant.name")
    trigger = FilingTriggerSerializer(source="*")
    overdue = serializers.BooleanField(help_text="Required or returned, and its deadline (due_by) has passed.")
    due_by = serializers.DateTimeField(help_text="The deadline: 24:00 Beijing time of due_on.")
    documents = serializers.SerializerMethodField()

    class Meta:
        model = Filing
        fields = [
            "id", "merchant", "merchant_name", "state", "overdue", "trigger", "profile", "profile_version",
            "due_on", "due_by", "legal_representative", "contact_phone", "deposit_bank", "details", "submissions",
            "submitted_at", "regulator_note", "decided_at", "created_at", "documents",
        ]  # fmt: skip

    @extend_schema_field(FilingDocumentSerializer(many=True))
    def get_documents(self, filing: Filing) -> list:
        prefetched = getattr(filing, "_prefetched_objects_cache", {}).get("documents")
        documents = (
            sorted(prefetched, key=lambda d: (-d.submission, d.uploaded_at, str(d.pk)))
            if prefetched is not None
            else filing_documents(filing=filing)
        )  # the regulator's list prefetches them; one filing reads them itself
        return list(FilingDocumentSerializer(documents, many=True).data)


class MerchantFilingStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=STATUSES, help_text="filed (已备案), not_filed (未备案: required, not yet accepted) or not_required."
    )
    filing = FilingSerializer(allow_null=True, help_text="The open filing, else the accepted one, else null.")


def _status_body(merchant) -> dict:
    filing = merchant_filing_current(merchant=merchant)
    return MerchantFilingStatusSerializer({"status": merchant_filing_status(merchant=merchant), "filing": filing}).data


class MerchantFilingApi(APIView):
    permission_classes = [IsMerchant]
    parser_classes = [MultiPartParser, FormParser, StrictJSONParser]

    class InputSerializer(serializers.Serializer):
        legal_representative = serializers.CharField(max_length=100, help_text="法定代表人")
        contact_phone = serializers.RegexField(r"^[0-9+\- ]{5,20}$", max_length=20)
        deposit_bank = serializers.CharField(max_length=200, help_text="The bank keeping the prepaid funds.")
        details = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
        documents = serializers.ListField(
            child=serializers.FileField(), allow_empty=True, required=False, default=list,
            help_text="PDF, JPEG or PNG files (licence, deposit agreement, ...); at least one.",
        )  # fmt: skip

    @extend_schema(operation_id="merchant_filing_get", responses={200: MerchantFilingStatusSerializer})
    def get(self, request):
        merchant = selectors.merchant_of_user(user=request.user)
        return Response(_status_body(merchant))

    @extend_schema(
        operation_id="merchant_filing_submit",
        request={"multipart/form-data": InputSerializer},
        responses={
            200: MerchantFilingStatusSerializer,
            400: _errors("invalid"),
            409: _errors("filing_not_required (with rule and basis when no trigger is met)"),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = selectors.merchant_of_user(user=request.user)
        filing_submit(merchant=merchant, **data.validated_data)
        return Response(_status_body(merchant))


class FilingDocumentApi(APIView):
    """A filing's document, for its merchant and the regulator (404 for anyone else)."""

    @extend_schema(
        operation_id="filing_document_get",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: _errors("not_found")},
    )
    def get(self, request, document_id):
        document = filing_document_get(user=request.user, document_id=document_id)
        return FileResponse(document.file.open("rb"), as_attachment=True, filename=document.name)
