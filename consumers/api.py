"""Consumers, cards, payments and redemptions; a card's top-ups and transfers."""

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from consumers import selectors, services, services_top_ups, services_transfers
from consumers.contract import mask_phone
from consumers.models import Card, CardTransfer, Consumer, Payment, Redemption, TopUp
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
        description="The sandbox bank settles a card's payment, or a top-up's (the top-up's id is its payment's "
        "id); the answer is the card either way.",
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


# --- top-ups (issue 19, item 4) -------------------------------------------------------------------


class TopUpPaymentSerializer(serializers.Serializer):
    """A top-up's own payment: its id is the top-up's (``POST /api/v1/payments/{id}/simulate``)."""

    id = serializers.CharField()
    gateway = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending", "succeeded", "failed"], source="payment_status")
    client_secret = serializers.SerializerMethodField()

    def get_client_secret(self, top_up: TopUp) -> str | None:
        return top_up.client_secret or None


class TopUpSerializer(serializers.Serializer):
    id = serializers.CharField()
    card = serializers.CharField(source="card_id")
    amount = serializers.IntegerField(help_text="Money paid in, in fen: counted in the card's price once paid.")
    face_value = serializers.IntegerField(
        help_text="Face value it adds to the card's balance, at the card's own rate of price to face value "
        "(rounded down to the fen)."
    )
    currency = CurrencyField()
    state = serializers.ChoiceField(choices=TopUp.State.choices)
    paid_at = serializers.DateTimeField(allow_null=True)
    cooling_off_ends_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Its own cooling-off period: returned in full until then, unless a service was received "
        "after it was paid.",
    )
    decided_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    rules_version = serializers.CharField()
    payment = TopUpPaymentSerializer(source="*")


class CardTopUpListCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        amount = MoneyField(min_value=1, help_text="Fen to pay into the card.")

    def get_permissions(self):
        return [IsConsumer()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        operation_id="card_top_up_list",
        tags=["cards"],
        responses={200: TopUpSerializer(many=True), 404: _errors("not_found")},
    )
    def get(self, request, card_id):
        card = selectors.card_get(user=request.user, card_id=card_id)
        return paginated_response(
            view=self,
            request=request,
            queryset=card.top_ups.order_by("-created_at", "pk"),
            serializer=TopUpSerializer,
        )

    @extend_schema(
        operation_id="card_top_up",
        tags=["cards"],
        request=InputSerializer,
        responses={
            201: TopUpSerializer,
            400: _errors("invalid, card_limit_exceeded (rule max_price or education_max_sessions)"),
            404: _errors("not_found"),
            409: _errors("card_not_top_upable (reason not_stored_value or not_in_use), merchant_sales_frozen"),
            503: _errors("gateway_unavailable"),
        },
    )
    @idempotent(atomic=gateway_in_database, keyed=True)
    def post(self, request, card_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        top_up = services_top_ups.top_up_request(
            consumer=selectors.consumer_of_user(user=request.user),
            card_id=card_id,
            amount=data.validated_data["amount"],
            idempotency_key=request.idempotency_key,
        )
        return Response(TopUpSerializer(top_up).data, status=status.HTTP_201_CREATED)


class TopUpDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="card_top_up_get", tags=["cards"], responses={200: TopUpSerializer, 404: _errors("not_found")}
    )
    def get(self, request, top_up_id):
        return Response(TopUpSerializer(selectors.top_up_get(user=request.user, top_up_id=top_up_id)).data)


class TopUpAnnexApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="card_top_up_annex_pdf",
        tags=["cards"],
        responses={(200, "application/pdf"): bytes, 404: _errors("not_found")},
    )
    def get(self, request, top_up_id):
        from consumers.contract import top_up_annex_pdf

        top_up = selectors.top_up_get(user=request.user, top_up_id=top_up_id)
        response = HttpResponse(top_up_annex_pdf(top_up=top_up), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="top-up-{top_up.pk}.pdf"'
        return response


# --- transfers (issue 19, item 1) -----------------------------------------------------------------


class TransferCardSerializer(serializers.Serializer):
    """What is offered: enough for the other consumer to decide (they cannot see the card itself)."""

    id = serializers.CharField()
    merchant = serializers.CharField(source="merchant_id")
    merchant_name = serializers.CharField(source="merchant.name")
    product_name = serializers.CharField(source="product.name")
    kind = serializers.ChoiceField(choices=Card._meta.get_field("kind").choices)
    state = serializers.ChoiceField(choices=Card.State.choices)
    currency = CurrencyField()
    escrow_balance = serializers.IntegerField(source="escrow_account.balance")
    balance = serializers.IntegerField(allow_null=True)
    sessions_remaining = serializers.IntegerField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)


class CardTransferSerializer(serializers.Serializer):
    id = serializers.CharField()
    card = serializers.CharField(source="card_id")
    state = serializers.ChoiceField(choices=CardTransfer.State.choices)
    from_name = serializers.CharField(source="from_consumer.display_name", help_text="The holder who offers it.")
    to_phone = serializers.SerializerMethodField(help_text="The phone number it is offered to, masked.")
    expires_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    offered_card = TransferCardSerializer(source="card")

    def get_to_phone(self, transfer: CardTransfer) -> str:
        return mask_phone(transfer.to_phone)


_TRANSFER_REFUSALS = "card_not_transferable (reason " + ", ".join(services_transfers.NOT_TRANSFERABLE) + ")"


class CardTransferCreateApi(APIView):
    permission_classes = [IsConsumer]

    class InputSerializer(serializers.Serializer):
        to_phone = serializers.RegexField(
            r"^\+?[0-9][0-9 -]{5,18}$",
            max_length=20,
            help_text="The mobile phone number of the consumer to offer the card to (it may sign up later).",
        )

    @extend_schema(
        operation_id="card_transfer_offer",
        tags=["cards"],
        request=InputSerializer,
        responses={
            201: CardTransferSerializer,
            400: _errors("invalid (also the holder's own phone number)"),
            404: _errors("not_found"),
            409: _errors(_TRANSFER_REFUSALS + "; under the yearly limit with rule and basis"),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, card_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        transfer = services_transfers.card_transfer_offer(
            consumer=selectors.consumer_of_user(user=request.user),
            card_id=card_id,
            to_phone=data.validated_data["to_phone"],
        )
        transfer = selectors.transfer_get(user=request.user, transfer_id=transfer.pk)
        return Response(CardTransferSerializer(transfer).data, status=status.HTTP_201_CREATED)


class CardTransferListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="card_transfer_list",
        tags=["cards"],
        parameters=[
            OpenApiParameter("state", str, enum=CardTransfer.State.values, description="Only offers in this state.")
        ],
        responses={200: CardTransferSerializer(many=True)},
    )
    def get(self, request):
        transfers = selectors.transfers_visible_to(user=request.user)
        if state := request.query_params.get("state"):
            transfers = transfers.filter(state=state)
        return paginated_response(view=self, request=request, queryset=transfers, serializer=CardTransferSerializer)


class CardTransferDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="card_transfer_get",
        tags=["cards"],
        responses={200: CardTransferSerializer, 404: _errors("not_found")},
    )
    def get(self, request, transfer_id):
        return Response(CardTransferSerializer(selectors.transfer_get(user=request.user, transfer_id=transfer_id)).data)


class CardTransferAcceptApi(APIView):
    permission_classes = [IsConsumer]

    @extend_schema(
        operation_id="card_transfer_accept",
        tags=["cards"],
        description="The consumer with the offer's phone number takes the card: it is theirs. Accepting "
        "again returns the accepted transfer.",
        request=None,
        responses={
            200: CardTransferSerializer,
            404: _errors("not_found"),
            409: _errors("card_transfer_not_open, " + _TRANSFER_REFUSALS),
        },
    )
    @idempotent(atomic=True)
    def post(self, request, transfer_id):
        transfer = services_transfers.card_transfer_accept(
            consumer=selectors.consumer_of_user(user=request.user), transfer_id=transfer_id
        )
        return Response(CardTransferSerializer(selectors.transfer_get(user=request.user, transfer_id=transfer.pk)).data)


class CardTransferDeclineApi(APIView):
    permission_classes = [IsConsumer]

    @extend_schema(
        operation_id="card_transfer_decline",
        tags=["cards"],
        description="The consumer with the offer's phone number declines it; the card stays the holder's.",
        request=None,
        responses={200: CardTransferSerializer, 404: _errors("not_found"), 409: _errors("card_transfer_not_open")},
    )
    @idempotent(atomic=True)
    def post(self, request, transfer_id):
        transfer = services_transfers.card_transfer_decline(
            consumer=selectors.consumer_of_user(user=request.user), transfer_id=transfer_id
        )
        return Response(CardTransferSerializer(selectors.transfer_get(user=request.user, transfer_id=transfer.pk)).data)


class CardTransferCancelApi(APIView):
    permission_classes = [IsConsumer]

    @extend_schema(
        operation_id="card_transfer_cancel",
        tags=["cards"],
        description="The holder withdraws the offer.",
        request=None,
        responses={200: CardTransferSerializer, 404: _errors("not_found"), 409: _errors("card_transfer_not_open")},
    )
    @idempotent(atomic=True)
    def post(self, request, transfer_id):
        transfer = services_transfers.card_transfer_cancel(
            consumer=selectors.consumer_of_user(user=request.user), transfer_id=transfer_id
        )
        return Response(CardTransferSerializer(selectors.transfer_get(user=request.user, transfer_id=transfer.pk)).data)


class CardTransferContractApi(APIView):
    permission_classes = [IsConsumer]

    @extend_schema(
        operation_id="card_transfer_contract_pdf",
        tags=["cards"],
        description="The giver's contract as it stood until the card was transferred (the giver only).",
        responses={(200, "application/pdf"): bytes, 404: _errors("not_found")},
    )
    def get(self, request, transfer_id):
        from consumers.contract import card_contract_pdf

        transfer = selectors.transfer_given_get(
            consumer=selectors.consumer_of_user(user=request.user), transfer_id=transfer_id
        )
        response = HttpResponse(card_contract_pdf(card=transfer.card, until=transfer), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="contract-{transfer.card_id}-until-transfer.pdf"'
        return response
