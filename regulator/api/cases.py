"""Inspection cases (API.md, Additions v1.1: ``/api/v1/regulator/cases``), the merchant's side of
their requests for documents (``/api/v1/merchant/document-requests``) and the download of a case's
file (``/api/v1/case-files/{id}``). Every regulator call is scoped to the regulator's jurisdiction:
a case outside it answers 404, as a missing one."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from core.idempotency import idempotent
from core.parsers import StrictJSONParser
from core.permissions import IsMerchant, IsRegulator
from merchants.selectors import merchant_of_user
from regulator.case_files import case_file_response
from regulator.models import CASE_FILE_TYPES, CaseFile, CaseFinding, CaseMeasure, DocumentRequest, InspectionCase
from regulator.reports.case import case_report_pdf
from regulator.selectors import cases as selectors
from regulator.selectors.audit import audit_verb_label
from regulator.services import cases as services

TAGS = ["cases"]


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


def _username(user) -> str | None:
    return user.username if user is not None else None


class CaseFileSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    sha256 = serializers.CharField(help_text="Hex SHA-256 of the file's bytes, computed when it was uploaded.")
    content_type = serializers.CharField(help_text="Read from the file's first bytes: PDF, JPEG or PNG.")
    uploaded_by = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="The download (an attachment).")

    class Meta:
        model = CaseFile
        fields = ["id", "name", "size", "content_type", "sha256", "uploaded_by", "uploaded_at", "url"]

    def get_uploaded_by(self, row: CaseFile) -> str:
        return row.uploaded_by.username

    def get_url(self, row: CaseFile) -> str:
        return f"/api/v1/case-files/{row.pk}"


class FindingSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    author = serializers.SerializerMethodField()
    files = CaseFileSerializer(many=True)

    class Meta:
        model = CaseFinding
        fields = ["id", "text", "author", "created_at", "files"]

    def get_author(self, finding: CaseFinding) -> str:
        return finding.author.username


class DocumentRequestSerializer(serializers.ModelSerializer):
    """A request for documents as the regulator sees it."""

    id = serializers.CharField()
    requested_by = serializers.SerializerMethodField()
    answered_by = serializers.SerializerMethodField()
    files = CaseFileSerializer(many=True, help_text="What the merchant sent.")

    class Meta:
        model = DocumentRequest
        fields = [
            "id", "text", "state", "requested_by", "created_at", "answer", "answered_by", "answered_at", "files",
        ]  # fmt: skip

    def get_requested_by(self, request: DocumentRequest) -> str:
        return request.requested_by.username

    def get_answered_by(self, request: DocumentRequest) -> str | None:
        return _username(request.answered_by)


class MeasureSerializer(serializers.ModelSerializer):
    action = serializers.CharField(source="action_id", help_text="The action's id (GET /regulator/actions/{id}).")
    kind = serializers.CharField(source="action.action", help_text="flag, freeze_sales, order_refunds, ...")
    reason = serializers.CharField(source="action.reason")
    state = serializers.CharField(source="action.state")
    taken_at = serializers.DateTimeField(source="action.created_at")
    linked_by = serializers.SerializerMethodField()

    class Meta:
        model = CaseMeasure
        fields = ["action", "kind", "reason", "state", "taken_at", "linked_by", "linked_at"]

    def get_linked_by(self, measure: CaseMeasure) -> str:
        return measure.linked_by.username


class AuditLineSerializer(serializers.Serializer):
    created_at = serializers.DateTimeField()
    actor = serializers.SerializerMethodField()
    verb = serializers.CharField(help_text="case_open, case_assign, case_finding_add, ...")
    label = serializers.SerializerMethodField(help_text="The step in words, in the request's language.")
    reason = serializers.CharField()
    changes = serializers.DictField(help_text="{field: [before, after]}")

    def get_actor(self, event) -> str:
        return event.actor.username if event.actor_id else event.actor_label

    def get_label(self, event) -> str:
        return audit_verb_label("action", event.verb)


class CaseSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    merchant = serializers.CharField(source="merchant_id")
    merchant_name = serializers.CharField(source="merchant.name")
    opened_by = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField(help_text="The inspector's username, or null.")
    closed_by = serializers.SerializerMethodField()

    class Meta:
        model = InspectionCase
        fields = [
            "id", "merchant", "merchant_name", "reason", "state", "opened_by", "assignee", "created_at",
            "conclusion", "closed_by", "closed_at",
        ]  # fmt: skip

    def get_opened_by(self, case: InspectionCase) -> str:
        return case.opened_by.username

    def get_assignee(self, case: InspectionCase) -> str | None:
        return _username(case.assignee)

    def get_closed_by(self, case: InspectionCase) -> str | None:
        return _username(case.closed_by)


class CaseDetailSerializer(CaseSerializer):
    findings = serializers.SerializerMethodField()
    document_requests = serializers.SerializerMethodField()
    measures = serializers.SerializerMethodField()
    audit = serializers.SerializerMethodField(help_text="Every step, oldest first.")

    class Meta(CaseSerializer.Meta):
        fields = [*CaseSerializer.Meta.fields, "findings", "document_requests", "measures", "audit"]

    @extend_schema_field(FindingSerializer(many=True))
    def get_findings(self, case: InspectionCase) -> list:
        return list(FindingSerializer(selectors.case_findings(case=case), many=True).data)

    @extend_schema_field(DocumentRequestSerializer(many=True))
    def get_document_requests(self, case: InspectionCase) -> list:
        return list(DocumentRequestSerializer(selectors.case_document_requests(case=case), many=True).data)

    @extend_schema_field(MeasureSerializer(many=True))
    def get_measures(self, case: InspectionCase) -> list:
        return list(MeasureSerializer(selectors.case_measures(case=case), many=True).data)

    @extend_schema_field(AuditLineSerializer(many=True))
    def get_audit(self, case: InspectionCase) -> list:
        return list(AuditLineSerializer(selectors.case_audit_trail(case=case), many=True).data)


def _detail(request, case_id) -> dict:
    return CaseDetailSerializer(selectors.case_get(user=request.user, case_id=case_id)).data


_FILES_HELP = "PDF, JPEG or PNG files, each at most CASE_FILE_MAX_BYTES; the type is read from the content."
_FILE_ERRORS = "invalid, case_file_type_not_allowed, case_file_too_large"


# --- the regulator's ---------------------------------------------------------------------------------


class CaseListCreateApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        merchant = serializers.CharField(max_length=64, help_text="The merchant's id.")
        reason = serializers.CharField(max_length=services.REASON_MAX)

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=InspectionCase.State.choices, required=False)
        merchant = serializers.UUIDField(required=False, help_text="Only this merchant's cases.")

    @extend_schema(
        operation_id="regulator_case_list",
        tags=TAGS,
        parameters=[FilterSerializer],
        responses={200: CaseSerializer(many=True), 400: _errors("invalid")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        cases = selectors.cases_for_regulator(
            user=request.user, state=data.get("state"), merchant_id=data.get("merchant")
        )
        return paginated_response(view=self, request=request, queryset=cases, serializer=CaseSerializer)

    @extend_schema(
        operation_id="regulator_case_open",
        tags=TAGS,
        request=InputSerializer,
        responses={201: CaseDetailSerializer, 400: _errors("invalid"), 404: _errors("not_found (the merchant)")},
    )
    @idempotent
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_open(
            regulator=request.user,
            merchant_id=data.validated_data["merchant"],
            reason=data.validated_data["reason"],
            idempotency_key=request.idempotency_key,
        )
        return Response(_detail(request, case.pk), status=status.HTTP_201_CREATED)


class CaseDetailApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_case_get", tags=TAGS, responses={200: CaseDetailSerializer, 404: _errors("not_found")}
    )
    def get(self, request, case_id):
        return Response(_detail(request, case_id))


class CaseAssignApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        assignee = serializers.CharField(max_length=150, help_text="The username of a regulator covering the merchant.")

    @extend_schema(
        operation_id="regulator_case_assign",
        tags=TAGS,
        request=InputSerializer,
        responses={
            200: CaseDetailSerializer,
            400: _errors("invalid, assignee_not_allowed"),
            404: _errors("not_found"),
            409: _errors("case_closed"),
        },
    )
    def post(self, request, case_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_assign(regulator=request.user, case_id=case_id, assignee=data.validated_data["assignee"])
        return Response(_detail(request, case.pk))


class CaseFindingCreateApi(APIView):
    permission_classes = [IsRegulator]
    parser_classes = [MultiPartParser, FormParser, StrictJSONParser]

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=services.TEXT_MAX, help_text="What was found.")
        files = serializers.ListField(
            child=serializers.FileField(), required=False, default=list, max_length=services.MAX_FILES,
            help_text=_FILES_HELP,
        )  # fmt: skip

    @extend_schema(
        operation_id="regulator_case_finding_add",
        tags=TAGS,
        request={"multipart/form-data": InputSerializer, "application/json": InputSerializer},
        responses={
            201: FindingSerializer,
            400: _errors(_FILE_ERRORS),
            404: _errors("not_found"),
            409: _errors("case_closed"),
        },
    )
    def post(self, request, case_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        finding = services.case_finding_add(regulator=request.user, case_id=case_id, **data.validated_data)
        finding = selectors.case_findings(case=finding.case).get(pk=finding.pk)
        return Response(FindingSerializer(finding).data, status=status.HTTP_201_CREATED)


class CaseDocumentRequestCreateApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=services.REQUEST_MAX, help_text="The documents the merchant must send.")

    @extend_schema(
        operation_id="regulator_case_documents_request",
        tags=TAGS,
        request=InputSerializer,
        responses={
            201: DocumentRequestSerializer,
            400: _errors("invalid"),
            404: _errors("not_found"),
            409: _errors("case_closed"),
        },
        description="The case then awaits the documents; the merchant is told (notification documents_requested).",
    )
    def post(self, request, case_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        asked = services.case_documents_request(
            regulator=request.user, case_id=case_id, text=data.validated_data["text"]
        )
        return Response(DocumentRequestSerializer(asked).data, status=status.HTTP_201_CREATED)


class CaseMeasureCreateApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        action = serializers.UUIDField(help_text="The id of an action taken against the case's merchant.")

    @extend_schema(
        operation_id="regulator_case_measure_link",
        tags=TAGS,
        request=InputSerializer,
        responses={
            201: MeasureSerializer,
            400: _errors("invalid, measure_not_of_merchant"),
            404: _errors("not_found (the case or the action)"),
            409: _errors("case_closed"),
        },
        description="Linking an action already linked answers the same link.",
    )
    def post(self, request, case_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        measure = services.case_measure_link(
            regulator=request.user, case_id=case_id, action_id=data.validated_data["action"]
        )
        measure = selectors.case_measures(case=measure.case).get(pk=measure.pk)
        return Response(MeasureSerializer(measure).data, status=status.HTTP_201_CREATED)


class CaseCloseApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        conclusion = serializers.CharField(max_length=services.TEXT_MAX)

    @extend_schema(
        operation_id="regulator_case_close",
        tags=TAGS,
        request=InputSerializer,
        responses={
            200: CaseDetailSerializer,
            400: _errors("invalid"),
            404: _errors("not_found"),
            409: _errors("case_closed (already closed)"),
        },
        description="Requests for documents still waiting are withdrawn.",
    )
    def post(self, request, case_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_close(
            regulator=request.user, case_id=case_id, conclusion=data.validated_data["conclusion"]
        )
        return Response(_detail(request, case.pk))


class CaseReportApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_case_report_pdf",
        tags=TAGS,
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, 404: _errors("not_found")},
    )
    def get(self, request, case_id):
        pdf = case_report_pdf(user=request.user, case_id=case_id)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="case-report-{case_id}.pdf"'
        return response


class CaseFileApi(APIView):
    """A case's file: to a regulator covering the merchant, and to the merchant the files it sent."""

    @extend_schema(
        operation_id="case_file_get",
        tags=TAGS,
        responses={
            **{(200, content_type): OpenApiTypes.BINARY for content_type in CASE_FILE_TYPES},
            404: _errors("not_found"),
        },
        description="An attachment of the type read from the file's content when it was uploaded "
        "(PDF, JPEG or PNG), with X-Content-Type-Options: nosniff and Repr-Digest (its SHA-256).",
    )
    def get(self, request, file_id):
        return case_file_response(selectors.case_file_get(user=request.user, file_id=file_id))


# --- the merchant's ----------------------------------------------------------------------------------


class MerchantDocumentRequestSerializer(serializers.ModelSerializer):
    """A request for documents as the merchant sees it: what is asked, and what it sent."""

    id = serializers.CharField()
    files = CaseFileSerializer(many=True, help_text="What the merchant sent.")

    class Meta:
        model = DocumentRequest
        fields = ["id", "text", "state", "created_at", "answer", "answered_at", "files"]


class MerchantDocumentRequestListApi(APIView):
    permission_classes = [IsMerchant]

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=DocumentRequest.State.choices, required=False)

    @extend_schema(
        operation_id="merchant_document_request_list",
        tags=TAGS,
        parameters=[FilterSerializer],
        responses={200: MerchantDocumentRequestSerializer(many=True), 400: _errors("invalid")},
        description="The requests for documents made of the merchant, those waiting for it first.",
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        merchant = merchant_of_user(user=request.user)
        rows = selectors.merchant_document_requests(merchant=merchant, state=filters.validated_data.get("state"))
        return paginated_response(
            view=self, request=request, queryset=rows, serializer=MerchantDocumentRequestSerializer
        )


class MerchantDocumentRequestDetailApi(APIView):
    permission_classes = [IsMerchant]

    @extend_schema(
        operation_id="merchant_document_request_get",
        tags=TAGS,
        responses={200: MerchantDocumentRequestSerializer, 404: _errors("not_found")},
    )
    def get(self, request, request_id):
        merchant = merchant_of_user(user=request.user)
        row = selectors.merchant_document_request_get(merchant=merchant, request_id=request_id)
        return Response(MerchantDocumentRequestSerializer(row).data)


class MerchantDocumentRequestSubmitApi(APIView):
    permission_classes = [IsMerchant]
    parser_classes = [MultiPartParser, FormParser, StrictJSONParser]

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=services.REQUEST_MAX, required=False, allow_blank=True, default="")
        files = serializers.ListField(
            child=serializers.FileField(), required=False, default=list, max_length=services.MAX_FILES,
            help_text=_FILES_HELP,
        )  # fmt: skip

    @extend_schema(
        operation_id="merchant_document_request_submit",
        tags=TAGS,
        request={"multipart/form-data": InputSerializer},
        responses={
            200: MerchantDocumentRequestSerializer,
            400: _errors(_FILE_ERRORS),
            404: _errors("not_found (another merchant's request)"),
            409: _errors("document_request_not_open (answered already, or withdrawn)"),
        },
        description="Files and a note (at least one of the two) in answer to a request.",
    )
    def post(self, request, request_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = merchant_of_user(user=request.user)
        services.case_documents_submit(merchant=merchant, request_id=request_id, **data.validated_data)
        row = selectors.merchant_document_request_get(merchant=merchant, request_id=request_id)
        return Response(MerchantDocumentRequestSerializer(row).data)
