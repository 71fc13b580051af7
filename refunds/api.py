"""Refunds of cards, and the merchant's daily settlement statement (it lists the refunds of its
cards: ``refunds.statement``)."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from consumers.selectors import card_get, consumer_of_user
from core.api import ErrorSerializer
from core.fields import CurrencyField
from core.idempotency import idempotent
from core.permissions import IsConsumer, IsMerchant
from merchants.selectors import merchant_of_user, merchant_settlement_get
from refunds import services
from refunds.holder_statement import STATEMENT_KINDS, holder_statement_lines, holder_statement_pdf
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
                description=(
                    "cooling_off_expired, balance_not_small, card_not_refundable, merchant_not_in_default, "
                    "card_in_dispute (a dispute about a service on the card is open)"
                ),
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


class StatementLineSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=list(STATEMENT_KINDS), help_text="What the line was (label: in words).")
    label = serializers.CharField(help_text="What the line was, in the request's language.")
    amount = serializers.IntegerField(help_text="Fen the line moved.")
    escrow_change = serializers.IntegerField(help_text="Fen into (+) or out of (-) the card's escrow.")
    escrow_after = serializers.IntegerField(help_text="Fen left in the card's escrow after the line.")
    entry = serializers.IntegerField(source="entry_id", allow_null=True, help_text="The journal entry's id.")
    hash = serializers.CharField(
        source="entry_hash", help_text="The journal entry's SHA-256 chain hash (empty for a line without one)."
    )


class CardStatementApi(APIView):
    """The holder's statement of a card: every journal entry that touched it (``refunds.holder_statement``)."""

    permission_classes = [IsConsumer]

    class OutputSerializer(serializers.Serializer):
        card = serializers.CharField(source="card.pk")
        currency = CurrencyField()
        price = serializers.IntegerField(source="card.price")
        escrow_balance = serializers.IntegerField()
        released_total = serializers.IntegerField(source="card.released_total")
        refunded_total = serializers.IntegerField(source="card.refunded_total")
        lines = StatementLineSerializer(many=True)

    @extend_schema(
        operation_id="card_statement",
        description=(
            "The holder's statement: every movement of the card's money (purchase, each release, fees, the refund "
            "and its payment), oldest first, with the journal entry's hash. Only the card's holder (404 for "
            "another consumer's card)."
        ),
        responses={200: OutputSerializer, 404: OpenApiResponse(ErrorSerializer, description="not_found")},
    )
    def get(self, request, card_id):
        card = card_get(user=request.user, card_id=card_id)
        body = {
            "card": card,
            "escrow_balance": card.escrow_left if card.paid_at else 0,
            "lines": holder_statement_lines(card=card),
        }
        return Response(self.OutputSerializer(body).data)


class CardStatementPdfApi(APIView):
    permission_classes = [IsConsumer]

    @extend_schema(
        operation_id="card_statement_pdf",
        responses={(200, "application/pdf"): bytes, 404: OpenApiResponse(ErrorSerializer, description="not_found")},
    )
    def get(self, request, card_id):
        card = card_get(user=request.user, card_id=card_id)
        response = HttpResponse(holder_statement_pdf(card=card), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="card-statement-{card.pk}.pdf"'
        return response
