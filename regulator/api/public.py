"""The public record's API, no login: a merchant's record and the search of merchants.

Both are rate-limited per client address (``regulator.ratelimit``, wrapped in ``regulator.urls``)
and ignore any credentials sent (no authentication runs, so a cached record costs no query).
"""

from django.conf import settings
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import get_language
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from merchants.models import Merchant
from merchants.registry import district_code, district_name
from merchants.selectors import FILING_STATUSES
from regulator.selectors import public as selectors

RATE_LIMITED = OpenApiResponse(
    ErrorSerializer,
    description="rate_limited: more than PUBLIC_RATE_LIMIT requests a minute from this address; "
    "Retry-After gives the seconds to wait.",
)


def _language() -> str:
    return "en" if (get_language() or "").startswith("en") else "zh-hans"


def _district(code: str) -> str:
    return district_name(code, _language())


class PublicMerchantDetailApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        name = serializers.CharField()
        license_number = serializers.CharField(help_text="The 18-character unified social credit code (营业执照).")
        district = serializers.SerializerMethodField(help_text="The district's name, in the request's language.")
        district_code = serializers.CharField(source="district", help_text="GB/T 2260 code, e.g. 110105.")
        category = serializers.ChoiceField(choices=Merchant.Category.choices, help_text="The merchant's trade.")
        status = serializers.ChoiceField(choices=Merchant.Status.choices)
        filing_status = serializers.ChoiceField(
            choices=FILING_STATUSES,
            help_text="filed: the regulator accepted its filing (备案); not_filed: a filing is required (its "
            "prepaid money passed the threshold) and not yet accepted; not_required: none is required.",
        )
        risk_warning = serializers.CharField(
            allow_null=True,
            help_text="The market regulator's public warning while the merchant is flagged (the text consumers "
            "see on its products); null when it is not flagged.",
        )
        complaints_answered_on_time = serializers.FloatField(
            allow_null=True,
            help_text="Of the merchant's complaints received in the last 12 months whose outcome is known "
            "(answered, or unanswered past their deadline), the percentage answered by their deadline, to one "
            "decimal (0-100); null when there is none.",
        )
        complaints_counted = serializers.IntegerField(
            help_text="How many complaints complaints_answered_on_time is over."
        )
        escrow_held_pct = serializers.FloatField(
            allow_null=True,
            help_text="Of the money paid for the merchant's cards still in use (cooling-off, active or frozen), "
            "the percentage still held in escrow by the custodian bank, to one decimal (0-100): what would be "
            "refunded if the merchant closed. The rest was released to the merchant as holders confirmed "
            "services. Null when no card is in use.",
        )
        as_of = serializers.DateTimeField(help_text="When these figures were computed (they are cached a few minutes).")

        def get_district(self, record: dict) -> str:
            return _district(record["district"])

    @extend_schema(
        operation_id="public_merchant_get",
        auth=[],
        responses={
            200: OutputSerializer,
            404: OpenApiResponse(ErrorSerializer, description="not_found"),
            429: RATE_LIMITED,
        },
    )
    def get(self, request, merchant_id):
        record = selectors.public_merchant_record(merchant_id=merchant_id)
        response = Response(self.OutputSerializer(record).data)
        patch_cache_control(response, public=True, max_age=settings.PUBLIC_RECORD_CACHE_SECONDS)
        patch_vary_headers(response, ["Accept-Language"])
        return response


class PublicMerchantListApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        name = serializers.CharField()
        license_number = serializers.CharField()
        district = serializers.SerializerMethodField()
        district_code = serializers.CharField(source="district")
        category = serializers.ChoiceField(choices=Merchant.Category.choices)
        status = serializers.ChoiceField(choices=Merchant.Status.choices)

        def get_district(self, merchant: Merchant) -> str:
            return _district(merchant.district)

    @extend_schema(
        operation_id="public_merchant_list",
        auth=[],
        parameters=[
            OpenApiParameter("q", str, description="Part of the merchant's name, or its whole licence number."),
            OpenApiParameter("district", str, description="District code (110105) or name (朝阳区, Chaoyang)."),
        ],
        responses={
            200: OutputSerializer(many=True),
            404: OpenApiResponse(ErrorSerializer, description="not_found: a page past the end"),
            429: RATE_LIMITED,
        },
    )
    def get(self, request):
        params = request.query_params
        district = (params.get("district") or "").strip()
        code = district_code(district) if district else None
        rows = selectors.public_merchants(q=params.get("q") or None, district=code)
        if district and code is None:
            rows = rows.none()  # an unknown district has no merchants
        return paginated_response(view=self, request=request, queryset=rows, serializer=self.OutputSerializer)
