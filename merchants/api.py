"""Merchant sign-up and products."""

from django.utils.translation import get_language
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from core.fields import CurrencyField, MoneyField, StrictIntegerField
from core.idempotency import idempotent
from core.permissions import IsMerchant
from merchants import selectors
from merchants.models import Merchant, Product
from merchants.registry import district_name
from merchants.services import merchants as services


class MerchantOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    district = serializers.SerializerMethodField()
    district_code = serializers.CharField(source="district")

    class Meta:
        model = Merchant
        fields = ["id", "name", "status", "category", "district", "district_code", "address", "license_number"]

    def get_district(self, merchant: Merchant) -> str:
        return district_name(merchant.district, get_language() or "zh-hans")


class MerchantCreateApi(APIView):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)
        name = serializers.CharField(max_length=200)
        license_number = serializers.CharField(max_length=64)
        category = serializers.ChoiceField(choices=Merchant.Category.choices)
        district = serializers.CharField(max_length=32, help_text="District code (110105), name (朝阳区) or pinyin.")
        address = serializers.CharField(max_length=300)
        email = serializers.EmailField(max_length=254, required=False, default="")

    @extend_schema(
        operation_id="merchant_create",
        request=InputSerializer,
        responses={
            201: MerchantOutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="invalid, invalid_license_number"),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = services.merchant_register(**data.validated_data)
        return Response(MerchantOutputSerializer(merchant).data, status=status.HTTP_201_CREATED)


class ProductOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    merchant = serializers.CharField(source="merchant_id")
    merchant_name = serializers.CharField(source="merchant.name")
    currency = CurrencyField()
    risk_warning = serializers.CharField(source="merchant.risk_warning", allow_null=True)

    class Meta:
        model = Product
        fields = [
            "id", "merchant", "merchant_name", "name", "kind", "price", "currency", "face_value", "unit_price",
            "sessions", "days", "refund_fee_bps", "on_sale", "risk_warning", "created_at",
        ]  # fmt: skip


class ProductListCreateApi(APIView):
    permission_classes = [IsAuthenticatedOrReadOnly]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        kind = serializers.ChoiceField(choices=Product.Kind.choices)
        price = MoneyField(min_value=1)
        face_value = MoneyField(min_value=1, required=False)
        unit_price = MoneyField(min_value=1, required=False)
        sessions = StrictIntegerField(min_value=1, max_value=100_000, required=False)
        days = StrictIntegerField(min_value=1, max_value=36_600, required=False)
        refund_fee_bps = StrictIntegerField(min_value=0, max_value=2000, required=False, default=0)

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsMerchant()]
        return [AllowAny()]

    @extend_schema(
        operation_id="product_list",
        parameters=[OpenApiParameter("merchant", str, description="only this merchant's products")],
        responses={
            200: ProductOutputSerializer(many=True),
            400: OpenApiResponse(ErrorSerializer, description="invalid"),
        },
    )
    def get(self, request):
        merchant_id = request.query_params.get("merchant")
        products = selectors.products_on_sale(merchant_id=merchant_id)
        return paginated_response(view=self, request=request, queryset=products, serializer=ProductOutputSerializer)

    @extend_schema(
        operation_id="product_create",
        request=InputSerializer,
        responses={
            201: ProductOutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="invalid, card_limit_exceeded"),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = selectors.merchant_of_user(user=request.user)
        product = services.product_create(merchant=merchant, **data.validated_data)
        return Response(ProductOutputSerializer(product).data, status=status.HTTP_201_CREATED)


class MerchantBalanceApi(APIView):
    permission_classes = [IsMerchant]

    class OutputSerializer(serializers.Serializer):
        escrow_outstanding = serializers.IntegerField(help_text="fen its customers still hold in escrow")
        available = serializers.IntegerField(help_text="fen released and not yet paid out")
        paid_out_total = serializers.IntegerField(help_text="fen paid out so far")
        currency = serializers.CharField()

    @extend_schema(operation_id="merchant_balance", responses={200: OutputSerializer})
    def get(self, request):
        balance = selectors.merchant_balance(merchant=selectors.merchant_of_user(user=request.user))
        return Response(self.OutputSerializer(balance).data)


class SettlementSerializer(serializers.Serializer):
    id = serializers.CharField()
    date = serializers.DateField()
    since = serializers.DateTimeField()
    cutoff = serializers.DateTimeField()
    released = serializers.IntegerField()
    fees = serializers.IntegerField()
    releases_count = serializers.IntegerField()
    refunds_count = serializers.IntegerField()
    payout_amount = serializers.IntegerField()
    payout_state = serializers.CharField()
    payout_reference = serializers.CharField()
    held_reason = serializers.CharField()
    paid_at = serializers.DateTimeField(allow_null=True)
    currency = CurrencyField()


class MerchantSettlementListApi(APIView):
    permission_classes = [IsMerchant]

    @extend_schema(operation_id="merchant_settlement_list", responses={200: SettlementSerializer(many=True)})
    def get(self, request):
        settlements = selectors.merchant_settlements(merchant=selectors.merchant_of_user(user=request.user))
        return paginated_response(view=self, request=request, queryset=settlements, serializer=SettlementSerializer)


class MerchantClosureApi(APIView):
    permission_classes = [IsMerchant]

    class InputSerializer(serializers.Serializer):
        closes_on = serializers.DateField()
        reason = serializers.CharField(max_length=2000)

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        status = serializers.CharField()
        closes_on = serializers.DateField()
        reason = serializers.CharField(source="closure_reason")
        rules_version = serializers.CharField(
            source="closure_rules_version",
            read_only=True,
            help_text="The version of the rules profile whose closure_notice_days the notice was checked against.",
        )
        consumers_notified = serializers.IntegerField()

    @extend_schema(
        operation_id="merchant_closure",
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="invalid, notice_too_short"),
            409: OpenApiResponse(ErrorSerializer, description="merchant_not_active"),
        },
    )
    @idempotent
    def post(self, request):
        from merchants.services.closure import merchant_closure_announce

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merchant, notified = merchant_closure_announce(
            merchant=selectors.merchant_of_user(user=request.user), **data.validated_data
        )
        merchant.consumers_notified = notified
        return Response(self.OutputSerializer(merchant).data, status=status.HTTP_201_CREATED)
