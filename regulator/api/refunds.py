"""Refunds for the regulator (API.md, Additions v1.1): refund one card of a merchant in default,
watch refunds against their deadline, and send a failed one again; of the regulator's jurisdiction
(a card or refund of a merchant outside it is not found)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import clock
from core.api import ErrorSerializer, paginated_response
from core.idempotency import idempotent
from core.permissions import IsRegulator
from refunds.api import RefundSerializer
from refunds.models import Refund
from refunds.selectors import REGULATOR_ORDERINGS
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.selectors.scoped import regulator_refunds
from regulator.services.refunds import regulator_card_refund, regulator_refund_retry

NOTE_MAX = 2000
REGULATOR_REASONS = [Refund.Reason.MERCHANT_DEFAULT.value]  # the reasons the regulator refunds one card for


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class RegulatorCardRefundApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        reason = serializers.ChoiceField(choices=REGULATOR_REASONS)
        note = serializers.CharField(max_length=NOTE_MAX, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="regulator_card_refund",
        request=InputSerializer,
        responses={
            201: RefundSerializer,
            400: _errors("invalid"),
            404: _errors("not_found"),
            409: _errors("merchant_not_in_default, card_not_refundable, idempotency_key_reused"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, card_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refund = regulator_card_refund(regulator=request.user, card_id=card_id, note=data.validated_data["note"])
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class RegulatorRefundSerializer(RefundSerializer):
    class MerchantSerializer(serializers.Serializer):
        id = serializers.CharField()
        name = serializers.CharField()

    merchant = MerchantSerializer(source="card.merchant")
    age = serializers.SerializerMethodField(help_text="Seconds from the request to its payment (or to now).")

    class Meta(RefundSerializer.Meta):
        fields = [*RefundSerializer.Meta.fields, "merchant", "age"]

    def get_age(self, refund: Refund) -> int:
        return int(((refund.paid_at or clock.now()) - refund.created_at).total_seconds())


class RegulatorRefundListApi(APIView):
    permission_classes = [IsRegulator]

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=Refund.State.choices, required=False)
        overdue = serializers.BooleanField(
            required=False, allow_null=True, default=None, help_text="true: unpaid past due_by, or paid late."
        )
        ordering = serializers.ChoiceField(choices=list(REGULATOR_ORDERINGS), required=False, default="due_by")

    @extend_schema(
        operation_id="regulator_refund_list",
        parameters=[FilterSerializer],
        responses={200: RegulatorRefundSerializer(many=True), 400: _errors("invalid")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        refunds = regulator_refunds(
            jurisdiction=jurisdiction_of(request.user),
            state=data.get("state"),
            overdue=data.get("overdue"),
            ordering=data["ordering"],
        )
        return paginated_response(view=self, request=request, queryset=refunds, serializer=RegulatorRefundSerializer)


class RegulatorRefundRetryApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_refund_retry",
        request=None,
        responses={
            202: RefundSerializer,
            404: _errors("not_found"),
            409: _errors("refund_not_failed, idempotency_key_reused"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, refund_id):
        refund = regulator_refund_retry(refund_id=refund_id, actor_id=request.user.pk)
        return Response(RefundSerializer(refund).data, status=status.HTTP_202_ACCEPTED)
