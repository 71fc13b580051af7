"""Consumers, cards, payments and redemptions."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from consumers import selectors, services
from consumers.models import Card, Consumer, Payment, Redemption
from core.api import ErrorSerializer, paginated_response
from core.fields import CurrencyField, MoneyField
from core.gateways import gateway_in_database
from core.idempotency import idempotent
from core.permissions import IsConsumer, IsMerchant
from core.representation import DeclaredSerializer
from merchants.selectors import merchant_of_user


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class ConsumerCreateApi(APIView):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)
        display_name = serializers.CharField(max_length=100)
        phone = serializers.RegexField(r"^\+?[0-9][0-9 -]{5,18}$", max_length=20)
        email = serializers.EmailField(max_length=254, required=False, default="")

    class OutputSerializer(serializers.ModelSerializer):
        id = serializers.CharField()
        username = serializers.CharField(source="user.username")

        class Meta:
            model = Consumer
            fields = ["id", "username", "display_name"]

    @extend_schema(
        operation_id="consumer_create",
        request=InputSerializer,
        responses={201: OutputSerializer, 400: _errors("invalid")},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        consumer = services.consumer_register(**data.validated_data)
        return Response(self.OutputSerializer(consumer).data, status=status.HTTP_201_CREATED)


# The response serializers are ``DeclaredSerializer``s: their declared fields are the one
# declaration, and the hot responses are built from a plan derived from them (core/representation.py).


class PaymentSerializer(DeclaredSerializer):
    id = serializers.CharField()
    gateway = serializers.CharField()
    status = serializers.CharField()
    client_secret = serializers.SerializerMethodField()

    def get_client_secret(self, payment: Payment) -> str | None:
        return payment.client_secret or None


class CardSerializer(DeclaredSerializer):
    id = serializers.CharField()
    product = serializers.CharField(source="product_id")
    merchant = serializers.CharField(source="merchant_id")
    consumer = serializers.CharField(source="consumer_id")
    kind = serializers.ChoiceField(choices=Card._meta.get_field("kind").choices)
    state = serializers.ChoiceField(choices=Card.State.choices)
    currency = CurrencyField()
    price = serializers.IntegerField()
    escrow_balance = serializers.IntegerField(source="escrow_account.balance")
    released_total = serializers.IntegerField()
    refunded_total = serializers.IntegerField()
    balance = serializers.IntegerField(allow_null=True)
    sessions_remaining = serializers.IntegerField(allow_null=True)
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
    cooling_off_ends_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    face_value = serializers.IntegerField(allow_null=True)
    unit_price = serializers.IntegerField(allow_null=True)
    sessions = serializers.IntegerField(allow_null=True)
    days = serializers.IntegerField(allow_null=True)
    refund_fee_bps = serializers.IntegerField()
    rules_version = serializers.CharField(
        help_text="The rules profile's version in force at the purchase, whose limits it was checked under."
    )
    payment = PaymentSerializer()


class CardListCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        product = serializers.UUIDField()

    def get_permissions(self):
        return [IsConsumer()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(operation_id="card_list", responses={200: CardSerializer(many=True)})
    def get(self, request):
        return paginated_response(
            view=self,
            request=request,
            queryset=selectors.cards_visible_to(user=request.user),
            serializer=CardSerializer,
        )

    @extend_schema(
        operation_id="card_purchase",
        request=InputSerializer,
        responses={
            201: CardSerializer,
            400: _errors("invalid, card_limit_exceeded"),
            409: _errors("merchant_sales_frozen"),
            503: _errors("gateway_unavailable"),
        },
    )
    # The purchase asks the gateway for a payment: one transaction only when that is a row here.
    @idempotent(atomic=gateway_in_database, keyed=True)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        card = services.card_purchase(
            consumer=selectors.consumer_of_user(user=request.user),
            product_id=data.validated_data["product"],
            idempotency_key=request.idempotency_key,
        )
        return Response(CardSerializer(card).data, status=status.HTTP_201_CREATED)


class CardDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="card_get", responses={200: CardSerializer, 404: _errors("not_found")})
    def get(self, request, card_id):
        return Response(CardSerializer(selectors.card_get(user=request.user, card_id=card_id)).data)


class PaymentSimulateApi(APIView):
    permission_classes = [IsConsumer]

    class InputSerializer(serializers.Serializer):
        outcome = serializers.ChoiceField(choices=["succeeded", "failed"])

    @extend_schema(
        operation_id="payment_simulate",
        request=InputSerializer,
        responses={
            200: CardSerializer,
            404: _errors("not_found (also under any gateway but local)"),
            409: _errors("payment_not_pending"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, payment_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        consumer = selectors.consumer_of_user(user=request.user)
        card = services.payment_simulate(
            consumer=consumer, payment_id=payment_id, outcome=data.validated_data["outcome"]
        )
        return Response(CardSerializer(card).data)


class RedemptionSerializer(DeclaredSerializer):
    id = serializers.CharField()
    card = serializers.CharField(source="card_id")
    amount = serializers.IntegerField(allow_null=True)
    sessions = serializers.IntegerField(allow_null=True)
    released = serializers.IntegerField()
    currency = CurrencyField()
    state = serializers.ChoiceField(choices=Redemption.State.choices)
    expires_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class RedemptionListCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        card = serializers.UUIDField()
        amount = MoneyField(min_value=1, required=False)

    def get_permissions(self):
        return [IsMerchant()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(operation_id="redemption_list", responses={200: RedemptionSerializer(many=True)})
    def get(self, request):
        redemptions = selectors.redemptions_visible_to(user=request.user)
        if state := request.query_params.get("state"):
            redemptions = redemptions.filter(state=state)
        return paginated_response(view=self, request=request, queryset=redemptions, serializer=RedemptionSerializer)

    @extend_schema(
        operation_id="redemption_request",
        request=InputSerializer,
        responses={
            201: RedemptionSerializer,
            400: _errors("invalid"),
            404: _errors("not_found"),
            409: _errors("card_not_redeemable, merchant_frozen, insufficient_balance"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        redemption = services.redemption_request(
            merchant=merchant_of_user(user=request.user),
            card_id=data.validated_data["card"],
            amount=data.validated_data.get("amount"),
        )
        return Response(RedemptionSerializer(redemption).data, status=status.HTTP_201_CREATED)


class RedemptionConfirmApi(APIView):
    permission_classes = [IsConsumer]

    @extend_schema(
        operation_id="redemption_confirm",
        request=None,
        responses={
            200: RedemptionSerializer,
            404: _errors("not_found"),
            409: _errors(
                "redemption_not_pending, redemption_expired, card_not_redeemable, merchant_frozen, insufficient_balance"
            ),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, redemption_id):
        redemption = services.redemption_confirm(
            consumer=selectors.consumer_of_user(user=request.user), redemption_id=redemption_id
        )
        return Response(RedemptionSerializer(redemption).data)


class RedemptionRejectApi(APIView):
    permission_classes = [IsConsumer]

    @extend_schema(
        operation_id="redemption_reject",
        request=None,
        responses={
            200: RedemptionSerializer,
            404: _errors("not_found"),
            409: _errors("redemption_not_pending, redemption_expired"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, redemption_id):
        redemption = services.redemption_reject(
            consumer=selectors.consumer_of_user(user=request.user), redemption_id=redemption_id
        )
        return Response(RedemptionSerializer(redemption).data)


class CardContractApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="card_contract_pdf", responses={(200, "application/pdf"): bytes, 404: _errors("not_found")}
    )
    def get(self, request, card_id):
        from consumers.contract import card_contract_pdf

        card = selectors.card_get(user=request.user, card_id=card_id)
        response = HttpResponse(card_contract_pdf(card=card), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="contract-{card.pk}.pdf"'
        return response


class OperatorConsentSerializer(serializers.Serializer):
    card = serializers.CharField(source="card_id")
    operator_change = serializers.CharField(source="operator_change_id")
    consent = serializers.BooleanField(
        help_text="true: the card continues with the new operator; false: it is refunded in full on changes_on."
    )
    new_operator_name = serializers.CharField(source="operator_change.new_operator_name")
    changes_on = serializers.DateField(source="operator_change.changes_on")
    decided_at = serializers.DateTimeField()


class CardOperatorConsentApi(APIView):
    permission_classes = [IsConsumer]

    class InputSerializer(serializers.Serializer):
        consent = serializers.BooleanField(
            help_text="true to continue with the new operator; false to be refunded (merchant_default) on its day."
        )

    @extend_schema(
        operation_id="card_operator_consent",
        request=InputSerializer,
        responses={
            200: OperatorConsentSerializer,
            400: _errors("invalid"),
            404: _errors("not_found"),
            409: _errors("operator_consent_not_open, idempotency_key_reused"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, card_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        answer = services.operator_consent_give(
            consumer=selectors.consumer_of_user(user=request.user),
            card_id=card_id,
            consent=data.validated_data["consent"],
        )
        return Response(OperatorConsentSerializer(answer).data)
