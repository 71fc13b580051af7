"""Merchant sign-up and products."""

from django.http import FileResponse
from django.utils.translation import get_language
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from core.fields import CurrencyField, MoneyField, StrictIntegerField
from core.idempotency import idempotent
from core.parsers import StrictJSONParser
from core.permissions import IsMerchant
from merchants import selectors
from merchants.models import Filing, FilingDocument, Merchant, Product
from merchants.registry import district_name
from merchants.selectors import (
    FILING_STATUSES,
    filing_basis,
    filing_document_get,
    filing_documents,
    merchant_filing_current,
    merchant_filing_status,
)
from merchants.services import merchants as services
from merchants.services.filing import filing_submit


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


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class FilingDocumentSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = FilingDocument
        fields = ["id", "name", "size", "content_type", "submission", "uploaded_at", "url"]

    def get_url(self, document: FilingDocument) -> str:
        return f"/api/v1/filings/documents/{document.pk}"


class FilingTriggerSerializer(serializers.Serializer):
    rule = serializers.CharField(source="trigger", help_text="The rules-profile rule that was met.")
    measured = serializers.IntegerField(help_text="The merchant's figure that met it, in the rule's unit.")
    threshold = serializers.IntegerField(help_text="The rule's value when it was met.")
    unit = serializers.CharField(help_text="fen or cards")
    basis = serializers.SerializerMethodField(help_text="The provision the rule comes from, in the request's language.")

    def get_basis(self, filing: Filing) -> str:
        return filing_basis(filing=filing, language=get_language())


class FilingSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    merchant = serializers.CharField(source="merchant_id")
    merchant_name = serializers.CharField(source="merchant.name")
    trigger = FilingTriggerSerializer(source="*")
    overdue = serializers.BooleanField(help_text="Required or returned, and its deadline (due_by) has passed.")
    due_by = serializers.DateTimeField(help_text="The deadline: 24:00 Beijing time of due_on.")
    documents = serializers.SerializerMethodField()

    class Meta:
        model = Filing
        fields = [
            "id", "merchant", "merchant_name", "state", "overdue", "trigger", "profile", "profile_version",
            "due_on", "due_by", "legal_representative", "contact_phone", "deposit_bank", "details", "submissions",
            "submitted_at", "regulator_note", "decided_at", "created_at", "documents",
        ]  # fmt: skip

    @extend_schema_field(FilingDocumentSerializer(many=True))
    def get_documents(self, filing: Filing) -> list:
        prefetched = getattr(filing, "_prefetched_objects_cache", {}).get("documents")
        documents = (
            sorted(prefetched, key=lambda d: (-d.submission, d.uploaded_at, str(d.pk)))
            if prefetched is not None
            else filing_documents(filing=filing)
        )  # the regulator's list prefetches them; one filing reads them itself
        return list(FilingDocumentSerializer(documents, many=True).data)


class MerchantFilingStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=FILING_STATUSES,
        help_text="filed (已备案), not_filed (未备案: required, not yet accepted) or not_required.",
    )
    filing = FilingSerializer(allow_null=True, help_text="The open filing, else the accepted one, else null.")


def _status_body(merchant) -> dict:
    filing = merchant_filing_current(merchant=merchant)
    return MerchantFilingStatusSerializer({"status": merchant_filing_status(merchant=merchant), "filing": filing}).data


class MerchantFilingApi(APIView):
    permission_classes = [IsMerchant]
    parser_classes = [MultiPartParser, FormParser, StrictJSONParser]

    class InputSerializer(serializers.Serializer):
        legal_representative = serializers.CharField(max_length=100, help_text="法定代表人")
        contact_phone = serializers.RegexField(r"^[0-9+\- ]{5,20}$", max_length=20)
        deposit_bank = serializers.CharField(max_length=200, help_text="The bank keeping the prepaid funds.")
        details = serializers.CharField(max_length=4000, required=False, allow_blank=True, default="")
        documents = serializers.ListField(
            child=serializers.FileField(), allow_empty=True, required=False, default=list,
            help_text="PDF, JPEG or PNG files (licence, deposit agreement, ...); at least one.",
        )  # fmt: skip

    @extend_schema(operation_id="merchant_filing_get", responses={200: MerchantFilingStatusSerializer})
    def get(self, request):
        merchant = selectors.merchant_of_user(user=request.user)
        return Response(_status_body(merchant))

    @extend_schema(
        operation_id="merchant_filing_submit",
        request={"multipart/form-data": InputSerializer},
        responses={
            200: MerchantFilingStatusSerializer,
            400: _errors("invalid"),
            409: _errors("filing_not_required (with rule and basis when no trigger is met)"),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = selectors.merchant_of_user(user=request.user)
        filing_submit(merchant=merchant, **data.validated_data)
        return Response(_status_body(merchant))


class FilingDocumentApi(APIView):
    """A filing's document, for its merchant and the regulator (404 for anyone else)."""

    @extend_schema(
        operation_id="filing_document_get",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: _errors("not_found")},
    )
    def get(self, request, document_id):
        document = filing_document_get(user=request.user, document_id=document_id)
        return FileResponse(document.file.open("rb"), as_attachment=True, filename=document.name)


# --- moving premises, and a change of operator -----------------------------------------------------


class RelocationSerializer(serializers.Serializer):
    id = serializers.CharField()
    state = serializers.CharField(
        help_text="notified (holders told, the move to come), moved (the new address is the merchant's) or "
        "cancelled (the notice was withdrawn before the move)."
    )
    moves_on = serializers.DateField(help_text="The moving day (Beijing).")
    address = serializers.CharField(help_text="The new address.")
    district = serializers.SerializerMethodField(help_text="The new district's name.")
    district_code = serializers.CharField(source="district", help_text="The new district's GB/T 2260 code.")
    refund_until = serializers.DateField(
        help_text="The last day (Beijing) a holder may take a merchant_default refund because of this move: the "
        "moving day plus the rules profile's relocation_refund_days_after."
    )
    rules_version = serializers.CharField(
        help_text="The version of the rules profile whose notice and refund days were applied."
    )
    consumers_notified = serializers.IntegerField(help_text="How many holders are being told (in the background).")
    notified_at = serializers.DateTimeField()
    moved_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)

    def get_district(self, relocation) -> str:
        return district_name(relocation.district, get_language() or "zh-hans")


class MerchantRelocationApi(APIView):
    permission_classes = [IsMerchant]

    class InputSerializer(serializers.Serializer):
        moves_on = serializers.DateField(help_text="The moving day (Beijing), at least relocation_notice_days ahead.")
        address = serializers.CharField(max_length=300, help_text="The new address.")
        district = serializers.CharField(max_length=32, help_text="District code (110105), name (朝阳区) or pinyin.")

    @extend_schema(
        operation_id="merchant_relocation",
        request=InputSerializer,
        responses={
            201: RelocationSerializer,
            400: _errors("invalid, notice_too_short (with rule and basis)"),
            409: _errors("merchant_not_active, relocation_pending, idempotency_key_reused"),
        },
    )
    @idempotent
    def post(self, request):
        from merchants.services.relocation import merchant_relocation_announce

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        relocation = merchant_relocation_announce(
            merchant=selectors.merchant_of_user(user=request.user), **data.validated_data
        )
        return Response(RelocationSerializer(relocation).data, status=status.HTTP_201_CREATED)


class MerchantRelocationCancelApi(APIView):
    permission_classes = [IsMerchant]

    @extend_schema(
        operation_id="merchant_relocation_cancel",
        request=None,
        responses={200: RelocationSerializer, 409: _errors("relocation_not_pending")},
    )
    def post(self, request):
        from merchants.services.relocation import merchant_relocation_cancel

        relocation = merchant_relocation_cancel(merchant=selectors.merchant_of_user(user=request.user))
        return Response(RelocationSerializer(relocation).data)


class OperatorChangeSerializer(serializers.Serializer):
    id = serializers.CharField()
    merchant = serializers.CharField(source="merchant_id")
    state = serializers.CharField(
        help_text="requested (awaiting the regulator), approved (holders asked to consent), completed (the new "
        "operator took over on changes_on) or rejected."
    )
    changes_on = serializers.DateField(help_text="The day (Beijing) the new operator takes over.")
    old_operator_name = serializers.CharField()
    old_license_number = serializers.CharField()
    new_operator_name = serializers.CharField()
    new_license_number = serializers.CharField()
    reason = serializers.CharField()
    rules_version = serializers.CharField(
        help_text="The version of the rules profile whose operator_change_notice_days the request was checked against."
    )
    requested_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)
    regulator_note = serializers.CharField()
    consumers_notified = serializers.IntegerField(help_text="Holders asked to consent when it was approved.")
    completed_at = serializers.DateTimeField(allow_null=True)


class MerchantOperatorChangeOutputSerializer(serializers.Serializer):
    operator_change = OperatorChangeSerializer(allow_null=True, help_text="The newest change of operator, or null.")


class OperatorChangeInputSerializer(serializers.Serializer):
    new_operator_name = serializers.CharField(max_length=200)
    new_license_number = serializers.CharField(
        max_length=64, help_text="The new operator's unified social credit code."
    )
    changes_on = serializers.DateField(help_text="The day it takes over, at least operator_change_notice_days ahead.")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class MerchantOperatorChangeApi(APIView):
    permission_classes = [IsMerchant]

    @extend_schema(operation_id="merchant_operator_change_get", responses={200: MerchantOperatorChangeOutputSerializer})
    def get(self, request):
        change = selectors.operator_change_latest(merchant=selectors.merchant_of_user(user=request.user))
        return Response(MerchantOperatorChangeOutputSerializer({"operator_change": change}).data)

    @extend_schema(
        operation_id="merchant_operator_change_request",
        request=OperatorChangeInputSerializer,
        responses={
            201: OperatorChangeSerializer,
            400: _errors("invalid, invalid_license_number, notice_too_short (with rule and basis)"),
            409: _errors("merchant_not_active, operator_change_pending, idempotency_key_reused"),
        },
    )
    @idempotent
    def post(self, request):
        from merchants.services.operator_change import operator_change_request

        data = OperatorChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merchant = selectors.merchant_of_user(user=request.user)
        change = operator_change_request(merchant_id=merchant.pk, requested_by=request.user, **data.validated_data)
        return Response(OperatorChangeSerializer(change).data, status=status.HTTP_201_CREATED)
