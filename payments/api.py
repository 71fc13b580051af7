"""Stripe's webhook endpoint (PAYMENT_GATEWAY=stripe)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer
from payments.webhooks import stripe_webhook_handle


class StripeWebhookApi(APIView):
    """Stripe calls this with its events; it authenticates by signing the raw body, not by a user."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # No parser: the signature covers the exact bytes Stripe sent, so the body is read raw
    # (``request.body``) and never parsed or re-serialised before the library verifies it.
    parser_classes: list = []

    class OutputSerializer(serializers.Serializer):
        received = serializers.BooleanField()
        result = serializers.CharField(help_text="handled, duplicate, ignored, or stale (a late failure report)")

        class Meta:
            ref_name = "StripeWebhookReceived"  # not the bare "Output" of every nested OutputSerializer

    @extend_schema(
        operation_id="stripe_webhook",
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "Stripe-Signature",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="t=<unix time>,v1=<HMAC-SHA256 of '<t>.<body>' with the endpoint's secret>",
            )
        ],
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="invalid_signature"),
            404: OpenApiResponse(ErrorSerializer, description="not_found (under any gateway but stripe)"),
            409: OpenApiResponse(ErrorSerializer, description="payment_not_pending (paid for a cancelled card)"),
            503: OpenApiResponse(ErrorSerializer, description="gateway_unavailable"),
        },
        auth=[],
    )
    def post(self, request):
        result = stripe_webhook_handle(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
        return Response(self.OutputSerializer({"received": True, "result": result}).data)
