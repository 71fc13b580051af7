"""Refunds of cards, and the merchant's daily settlement statement (it lists the refunds of its
cards: ``refunds.statement``)."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from consumers.selectors import consumer_of_user
from core.api import ErrorSerializer
from core.fields import CurrencyField
from core.idempotency import idempotent
from core.permissions import IsConsumer, IsMerchant
from merchants.selectors import merchant_of_user, merchant_settlement_get
from refunds import services
from refunds.models import Refund
from refunds.statement import settlement_statement_pdf


class RefundSerializer(serializers.ModelSerializer):
    """A refund as everyone sees it (the consumer's request, the regulator's refund of one card)."""

    id = serializers.CharField()
    card = serializers.CharField(source="card_id")
    top_up = serializers.CharField(
        source="top_up_id",
        allow_null=True,
        help_text="The top-up returned within its own cooling-off period (only its money); null for the card's refund.",
    )
    currency = CurrencyField()
    due_by = serializers.DateTimeField(
        help_text="When it must be paid by: the rules profile's refund_due_days after the request (GET /api/v1/rules)."
    )
    rules_version = serializers.CharField(
        read_only=True,
        help_text="The version of the rules profile that set due_by (empty for refunds booked before it was recorded).",
    )
    overdue = serializers.BooleanField(read_only=True, help_text="Still unpaid past due_by, or paid late.")
    attempts = serializers.IntegerField(help_text="Times it was sent to the gateway.")
    last_error = serializers.CharField(help_text="The gateway's last refusal (empty if none).")

    class Meta:
        model = Refund
        fields = [
            "id",
            "card",
            "top_up",
            "reason",
            "amount",
            "fee",
            "currency",
            "state",
            "created_at",
            "due_by",
            "rules_version",
            "paid_at",
            "overdue",
            "attempts",
            "last_error",
        ]


class CardRefundCreateApi(APIView):
    permission_classes = [IsConsumer]

    class InputSerializer(serializers.Serializer):
        reason = serializers.ChoiceField(choices=list(services.CONSUMER_REASONS))

    @extend_schema(
        operation_id="refund_request",
        request=InputSerializer,
        responses={
            201: RefundSerializer,
            400: OpenApiResponse(ErrorSerializer, description="invalid"),
            404: OpenApiResponse(ErrorSerializer, description="not_found"),
            409: OpenApiResponse(
                ErrorSerializer,
                description="cooling_off_expired, balance_not_small, card_not_refundable, merchant_not_in_default",
            ),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, card_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refund = services.refund_request(
            consumer=consumer_of_user(user=request.user), card_id=card_id, reason=data.validated_data["reason"]
        )
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class TopUpRefundCreateApi(APIView):
    permission_classes = [IsConsumer]

    @extend_schema(
        operation_id="card_top_up_refund",
        tags=["cards"],
        description="Return a top-up in full within its own cooling-off period (reason cooling_off): only its "
        "money, back through its own payment; the card keeps the rest and its state.",
        request=None,
        responses={
            201: RefundSerializer,
            404: OpenApiResponse(ErrorSerializer, description="not_found"),
            409: OpenApiResponse(ErrorSerializer, description="cooling_off_expired, card_not_refundable"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, top_up_id):
        refund = services.top_up_refund(consumer=consumer_of_user(user=request.user), top_up_id=top_up_id)
        return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


class MerchantSettlementStatementApi(APIView):
    permission_classes = [IsMerchant]

    @extend_schema(
        operation_id="merchant_settlement_statement_pdf",
        responses={(200, "application/pdf"): bytes, 404: OpenApiResponse(ErrorSerializer, description="not_found")},
    )
    def get(self, request, settlement_id):
        settlement = merchant_settlement_get(merchant=merchant_of_user(user=request.user), settlement_id=settlement_id)
        response = HttpResponse(settlement_statement_pdf(settlement=settlement), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="statement-{settlement.date.isoformat()}.pdf"'
        return response
