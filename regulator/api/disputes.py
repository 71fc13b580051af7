"""Disputes for the regulator (API.md, Additions v1.1): the merchants' disputes in its jurisdiction,
their evidence, and the decision (``upheld`` releases the redemption's share once)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from consumers.disputes import NOTE_MAX, OUTCOMES
from consumers.disputes_api import (
    EVIDENCE_FILE_TYPES,
    DisputeEvidenceSerializer,
    DisputeSerializer,
    evidence_download,
)
from consumers.models import Dispute
from consumers.selectors import dispute_among, dispute_evidence_get, disputes_among
from core.api import ErrorSerializer, paginated_response
from core.idempotency import idempotent
from core.permissions import IsRegulator
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.services.disputes import regulator_dispute_decide


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class RegulatorEvidenceSerializer(DisputeEvidenceSerializer):
    url_prefix = "/api/v1/regulator/disputes/evidence/"


class RegulatorDisputeSerializer(DisputeSerializer):
    class DisputeMerchantSerializer(serializers.Serializer):
        id = serializers.CharField()
        name = serializers.CharField()

    merchant_detail = DisputeMerchantSerializer(source="merchant")
    evidence_serializer = RegulatorEvidenceSerializer


class RegulatorDisputeListApi(APIView):
    permission_classes = [IsRegulator]

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=Dispute.State.choices, required=False)

    @extend_schema(
        operation_id="regulator_dispute_list",
        description="The disputes of the merchants in the regulator's jurisdiction: open ones first, by deadline.",
        parameters=[FilterSerializer],
        responses={200: RegulatorDisputeSerializer(many=True), 400: _errors("invalid")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        found = disputes_among(
            merchants=jurisdiction_of(request.user).merchants(), state=filters.validated_data.get("state")
        )
        return paginated_response(view=self, request=request, queryset=found, serializer=RegulatorDisputeSerializer)


class RegulatorDisputeDetailApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_dispute_get", responses={200: RegulatorDisputeSerializer, 404: _errors("not_found")}
    )
    def get(self, request, dispute_id):
        dispute = dispute_among(merchants=jurisdiction_of(request.user).merchants(), dispute_id=dispute_id)
        return Response(RegulatorDisputeSerializer(dispute).data)


class RegulatorDisputeDecideApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        outcome = serializers.ChoiceField(choices=[outcome.value for outcome in OUTCOMES])
        note = serializers.CharField(max_length=NOTE_MAX, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="regulator_dispute_decide",
        description=(
            "`upheld` releases the contested service's share of the card's escrow to the merchant, once and "
            "never more than the escrow left; `dismissed` releases nothing. Either ends the dispute."
        ),
        request=InputSerializer,
        responses={
            200: RegulatorDisputeSerializer,
            400: _errors("invalid"),
            404: _errors("not_found"),
            409: _errors("dispute_not_open, dispute_expired, merchant_frozen, idempotency_key_reused"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, dispute_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dispute = regulator_dispute_decide(
            regulator=request.user,
            dispute_id=dispute_id,
            outcome=data.validated_data["outcome"],
            note=data.validated_data["note"],
        )
        return Response(RegulatorDisputeSerializer(dispute).data)


class RegulatorDisputeEvidenceFileApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_dispute_evidence_file",
        responses={**EVIDENCE_FILE_TYPES, 404: _errors("not_found")},
    )
    def get(self, request, evidence_id):
        merchants = jurisdiction_of(request.user).merchants()
        return evidence_download(dispute_evidence_get(user=request.user, evidence_id=evidence_id, merchants=merchants))
