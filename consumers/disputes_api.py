"""Disputes for their parties (API.md, Additions v1.1): the merchant contests a rejected service,
either party reads it and adds evidence, and downloads the evidence files. The regulator's list and
decision are ``regulator.api.disputes``. The rules are ``consumers.disputes``'."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from consumers import disputes, selectors
from consumers.models import Dispute, DisputeEvidence
from core.api import ErrorSerializer, paginated_response
from core.fields import CurrencyField
from core.idempotency import idempotent
from core.permissions import IsMerchant
from core.uploads import ACCEPTED
from merchants.selectors import merchant_of_user


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class IsDisputeParty(BasePermission):
    """Consumers and merchants: the two sides a dispute can have."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role in ("consumer", "merchant"))


class DisputeEvidenceSerializer(serializers.Serializer):
    id = serializers.CharField()
    party = serializers.ChoiceField(choices=DisputeEvidence.Party.choices)
    text = serializers.CharField(help_text="The party's account (empty for a file).")
    name = serializers.CharField(help_text="A file's name as it was sent (empty for a text).")
    size = serializers.IntegerField(help_text="Bytes.")
    content_type = serializers.CharField(help_text="application/pdf, image/jpeg or image/png, from the file's bytes.")
    sha256 = serializers.CharField(help_text="SHA-256 of the file as it was received (hex).")
    url = serializers.SerializerMethodField(help_text="Where the file is downloaded (null for a text).")
    created_at = serializers.DateTimeField()

    # The path each audience downloads files from: the parties' here, the regulator's under /regulator/.
    url_prefix = "/api/v1/disputes/evidence/"

    def get_url(self, evidence: DisputeEvidence) -> str | None:
        return f"{self.url_prefix}{evidence.pk}" if evidence.file else None


class DisputeSerializer(serializers.Serializer):
    id = serializers.CharField()
    redemption = serializers.CharField(source="redemption_id")
    card = serializers.CharField(source="card_id")
    merchant = serializers.CharField(source="merchant_id")
    state = serializers.ChoiceField(choices=Dispute.State.choices)
    reason = serializers.CharField(help_text="The merchant's: why it holds the service was given.")
    amount = serializers.IntegerField(
        source="redemption.amount", allow_null=True, help_text="Face value of the contested service (stored value)."
    )
    released = serializers.IntegerField(help_text="Fen released to the merchant by upholding it.")
    currency = CurrencyField()
    decide_by = serializers.DateTimeField(help_text="Not decided by then, it is dismissed.")
    note = serializers.CharField(help_text="The regulator's note with its decision.")
    ended_by = serializers.ChoiceField(
        choices=Dispute.EndedBy.choices,
        allow_blank=True,
        help_text="decision, timeout (not decided in time) or refund (the platform refunded the card); "
        "empty while open.",
    )
    decided_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    evidence = serializers.SerializerMethodField()

    evidence_serializer = DisputeEvidenceSerializer

    def get_evidence(self, dispute: Dispute) -> list:
        return list(self.evidence_serializer(selectors.dispute_evidence(dispute=dispute), many=True).data)


class RedemptionDisputeCreateApi(APIView):
    permission_classes = [IsMerchant]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=disputes.REASON_MAX)

    @extend_schema(
        operation_id="redemption_dispute",
        description=(
            "The merchant contests a service its consumer rejected, within the rules profile's "
            "`dispute_window_days` of the rejection. Evidence files are added with "
            "`POST /api/v1/disputes/{id}/evidence`. Contesting again returns the same dispute."
        ),
        request=InputSerializer,
        responses={
            201: DisputeSerializer,
            400: _errors("invalid"),
            404: _errors("not_found"),
            409: _errors("redemption_not_disputable, dispute_window_closed (with rule and basis)"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, redemption_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = disputes.dispute_open(
            merchant=merchant_of_user(user=request.user),
            redemption_id=redemption_id,
            reason=data.validated_data["reason"],
        )
        return Response(DisputeSerializer(dispute).data, status=status.HTTP_201_CREATED)


class DisputeListApi(APIView):
    permission_classes = [IsDisputeParty]

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=Dispute.State.choices, required=False)

    @extend_schema(
        operation_id="dispute_list",
        parameters=[FilterSerializer],
        responses={200: DisputeSerializer(many=True), 400: _errors("invalid")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        found = selectors.disputes_visible_to(user=request.user)
        if state := filters.validated_data.get("state"):
            found = found.filter(state=state)
        return paginated_response(view=self, request=request, queryset=found, serializer=DisputeSerializer)


class DisputeDetailApi(APIView):
    permission_classes = [IsDisputeParty]

    @extend_schema(operation_id="dispute_get", responses={200: DisputeSerializer, 404: _errors("not_found")})
    def get(self, request, dispute_id):
        return Response(DisputeSerializer(selectors.dispute_get(user=request.user, dispute_id=dispute_id)).data)


class DisputeEvidenceCreateApi(APIView):
    permission_classes = [IsDisputeParty]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=disputes.TEXT_MAX, required=False, allow_blank=True, default="")
        files = serializers.ListField(
            child=serializers.FileField(),
            required=False,
            default=list,
            max_length=disputes.FILES_PER_SUBMISSION,
            help_text="PDF, JPEG or PNG (judged by the file's bytes), each at most DISPUTE_EVIDENCE_MAX_BYTES.",
        )

    @extend_schema(
        operation_id="dispute_evidence_add",
        description="Either party adds its account (text) and files while the dispute is open (multipart/form-data).",
        request={"multipart/form-data": InputSerializer, "application/json": InputSerializer},
        responses={
            201: DisputeSerializer,
            400: _errors("invalid"),
            404: _errors("not_found"),
            409: _errors("dispute_not_open, dispute_expired"),
        },
    )
    def post(self, request, dispute_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        disputes.dispute_evidence_add(
            user=request.user,
            dispute_id=dispute_id,
            text=data.validated_data["text"],
            files=data.validated_data["files"],
        )
        dispute = selectors.dispute_get(user=request.user, dispute_id=dispute_id)
        return Response(DisputeSerializer(dispute).data, status=status.HTTP_201_CREATED)


# An evidence file is served as the type its bytes showed when it came in (core.uploads.ACCEPTED).
EVIDENCE_FILE_TYPES: dict = {(200, content_type): bytes for content_type in ACCEPTED}


def evidence_download(evidence: DisputeEvidence) -> FileResponse:
    """A file of evidence, always as an attachment, with the type its bytes showed when it came in."""
    response = FileResponse(
        evidence.file.open("rb"), as_attachment=True, filename=evidence.name, content_type=evidence.content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


class DisputeEvidenceFileApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="dispute_evidence_file",
        description="A file of evidence, for the dispute's merchant and consumer (404 for anyone else).",
        responses={**EVIDENCE_FILE_TYPES, 404: _errors("not_found")},
    )
    def get(self, request, evidence_id):
        return evidence_download(selectors.dispute_evidence_get(user=request.user, evidence_id=evidence_id))
