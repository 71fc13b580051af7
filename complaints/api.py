"""Complaints (API.md, Complaints): filed by consumers or entered by regulator staff from the 12345
hotline, answered by the merchant, closed by the regulator; and the regulator's statistics."""

import re
from datetime import date

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from complaints import selectors, services
from complaints.models import Complaint
from core.api import ErrorSerializer, paginated_response
from core.idempotency import idempotent
from core.permissions import IsConsumer, IsMerchant, IsRegulator
from merchants.registry import district_code
from merchants.selectors import merchant_of_user

DESCRIPTION_MAX = 5000


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class ComplaintSerializer(serializers.Serializer):
    id = serializers.CharField()
    merchant = serializers.CharField(source="merchant_id")
    merchant_name = serializers.CharField(source="merchant.name")
    card = serializers.CharField(source="card_id", allow_null=True)
    category = serializers.ChoiceField(choices=Complaint.Category.choices)
    description = serializers.CharField()
    source = serializers.ChoiceField(choices=Complaint.Source.choices)
    hotline_reference = serializers.CharField(allow_null=True)
    urgent = serializers.BooleanField()
    state = serializers.ChoiceField(choices=Complaint.State.choices)
    respond_by = serializers.DateTimeField()
    rules_version = serializers.CharField(
        read_only=True,
        help_text="The version of the rules profile that set respond_by (empty if filed before it was recorded).",
    )
    overdue = serializers.SerializerMethodField(help_text="True once the complaint was ever overdue.")
    overdue_at = serializers.DateTimeField(allow_null=True)
    response = serializers.CharField()
    responded_at = serializers.DateTimeField(allow_null=True)
    resolution = serializers.CharField()
    closed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def get_overdue(self, complaint: Complaint) -> bool:
        return complaint.overdue_at is not None


class _DistrictField(serializers.CharField):
    """A Beijing district by code (110105), name (朝阳区) or pinyin; its GB/T 2260 code."""

    def to_internal_value(self, data):
        code = district_code(super().to_internal_value(data))
        if code is None:
            raise serializers.ValidationError(_("Not one of Beijing's 16 districts."))
        return code


class ComplaintListCreateApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        merchant = serializers.UUIDField()
        card = serializers.UUIDField(required=False, allow_null=True)
        category = serializers.ChoiceField(choices=Complaint.Category.choices)
        description = serializers.CharField(max_length=DESCRIPTION_MAX)
        source = serializers.ChoiceField(choices=Complaint.Source.choices)
        urgent = serializers.BooleanField(required=False, default=False)
        hotline_reference = serializers.CharField(
            required=False, allow_null=True, max_length=64, help_text="Hotline only: the 12345 work order number."
        )
        received_at = serializers.DateTimeField(
            required=False, allow_null=True, help_text="Hotline only: when the call came in (default: now)."
        )

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=Complaint.State.choices, required=False)
        merchant = serializers.UUIDField(required=False)
        district = _DistrictField(required=False, max_length=32)
        category = serializers.ChoiceField(choices=Complaint.Category.choices, required=False)
        source = serializers.ChoiceField(choices=Complaint.Source.choices, required=False)
        urgent = serializers.BooleanField(required=False, allow_null=True, default=None)

    def get_permissions(self):
        if self.request.method == "POST":
            return [(IsConsumer | IsRegulator)()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="complaint_list",
        parameters=[FilterSerializer],
        responses={200: ComplaintSerializer(many=True), 400: _errors("invalid")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        complaints = selectors.complaint_list(
            user=request.user,
            state=data.get("state"),
            merchant_id=data.get("merchant"),
            district=data.get("district"),
            category=data.get("category"),
            source=data.get("source"),
            urgent=data.get("urgent"),
        )
        return paginated_response(view=self, request=request, queryset=complaints, serializer=ComplaintSerializer)

    @extend_schema(
        operation_id="complaint_file",
        request=InputSerializer,
        responses={
            201: ComplaintSerializer,
            400: _errors(
                "invalid, unknown_merchant, complaint_card_mismatch, complaint_source_not_allowed, "
                "duplicate_hotline_reference"
            ),
        },
    )
    @idempotent
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        complaint = services.complaint_file(
            actor=request.user,
            merchant_id=data.validated_data["merchant"],
            card_id=data.validated_data.get("card"),
            category=data.validated_data["category"],
            description=data.validated_data["description"],
            source=data.validated_data["source"],
            urgent=data.validated_data["urgent"],
            hotline_reference=data.validated_data.get("hotline_reference"),
            received_at=data.validated_data.get("received_at"),
        )
        return Response(ComplaintSerializer(complaint).data, status=status.HTTP_201_CREATED)


class ComplaintDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(operation_id="complaint_get", responses={200: ComplaintSerializer, 404: _errors("not_found")})
    def get(self, request, complaint_id):
        return Response(ComplaintSerializer(selectors.complaint_get(user=request.user, complaint_id=complaint_id)).data)


# A merchant's answer and a regulator's closing refuse the same things: a bad body, a complaint the
# caller may not see, one no longer open.
_ANSWER_RESPONSES = {
    200: ComplaintSerializer,
    400: _errors("invalid"),
    404: _errors("not_found"),
    409: _errors("complaint_not_open"),
}


class ComplaintRespondApi(APIView):
    permission_classes = [IsMerchant]

    class InputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=DESCRIPTION_MAX)

    @extend_schema(
        operation_id="complaint_respond",
        request=InputSerializer,
        responses=_ANSWER_RESPONSES,
    )
    def post(self, request, complaint_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        complaint = services.complaint_respond(
            complaint_id=complaint_id, merchant=merchant_of_user(user=request.user), text=data.validated_data["text"]
        )
        return Response(ComplaintSerializer(complaint).data)


class ComplaintCloseApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        resolution = serializers.CharField(max_length=DESCRIPTION_MAX)
        upheld = serializers.BooleanField(
            required=False,
            default=False,
            help_text="The regulator finds for the complainant: the card's holder may take a merchant_default refund.",
        )

    @extend_schema(
        operation_id="complaint_close",
        request=InputSerializer,
        responses=_ANSWER_RESPONSES,
    )
    def post(self, request, complaint_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        complaint = services.complaint_close(
            complaint_id=complaint_id,
            regulator=request.user,
            resolution=data.validated_data["resolution"],
            upheld=data.validated_data["upheld"],
        )
        return Response(ComplaintSerializer(complaint).data)


class _MonthField(serializers.CharField):
    """``YYYY-MM``: the first day of that month."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        match = re.fullmatch(r"(\d{4})-(\d{2})", value)
        if not match or not 1 <= int(match[2]) <= 12 or not 1970 <= int(match[1]) <= 9998:
            raise serializers.ValidationError(_("A month as YYYY-MM."))
        return date(int(match[1]), int(match[2]), 1)


class ComplaintStatsApi(APIView):
    permission_classes = [IsRegulator]

    class FilterSerializer(serializers.Serializer):
        month = _MonthField(required=False, help_text="YYYY-MM, Beijing time (default: this month).")
        district = _DistrictField(required=False, max_length=32)
        category = serializers.ChoiceField(choices=Complaint.Category.choices, required=False)

    class OutputSerializer(serializers.Serializer):
        class ComplaintStatsOverdue(serializers.Serializer):
            unanswered_now = serializers.IntegerField(help_text="Complaints overdue and still unanswered.")
            month = serializers.IntegerField(help_text="The month's complaints that went overdue.")

        class ComplaintStatsDistrict(serializers.Serializer):
            district = serializers.CharField()
            district_name = serializers.CharField()
            count = serializers.IntegerField()
            overdue = serializers.IntegerField()

        class ComplaintStatsCategory(serializers.Serializer):
            category = serializers.ChoiceField(choices=Complaint.Category.choices)
            count = serializers.IntegerField()
            overdue = serializers.IntegerField()

        class ComplaintStatsMonth(serializers.Serializer):
            month = serializers.CharField()
            count = serializers.IntegerField()
            overdue = serializers.IntegerField()

        class ComplaintStatsTopCategory(serializers.Serializer):
            category = serializers.ChoiceField(choices=Complaint.Category.choices)
            count = serializers.IntegerField()
            share = serializers.FloatField(help_text="Of the month's complaints, 0-1.")
            previous = serializers.IntegerField(help_text="Count in the month before.")
            change = serializers.IntegerField(help_text="count - previous.")

        class ComplaintStatsPair(serializers.Serializer):
            district = serializers.CharField()
            district_name = serializers.CharField()
            category = serializers.ChoiceField(choices=Complaint.Category.choices)
            count = serializers.IntegerField()

        month = serializers.CharField()
        window = serializers.DictField(
            child=serializers.CharField(),
            help_text='{"from", "to"} as YYYY-MM: the 12 months by_district, by_category and by_month cover.',
        )
        district = serializers.CharField(allow_null=True)
        category = serializers.CharField(allow_null=True)
        total = serializers.IntegerField(help_text="Complaints received in the month.")
        overdue = ComplaintStatsOverdue()
        by_district = ComplaintStatsDistrict(many=True)
        by_category = ComplaintStatsCategory(many=True)
        by_month = ComplaintStatsMonth(many=True)
        top_categories = ComplaintStatsTopCategory(many=True)
        top_pairs = ComplaintStatsPair(many=True)

    @extend_schema(
        operation_id="regulator_complaint_stats",
        parameters=[
            OpenApiParameter("month", str, description="YYYY-MM (Beijing); default the current month."),
            OpenApiParameter("district", str, description="District code, name or pinyin."),
            OpenApiParameter("category", str, enum=Complaint.Category.values),
        ],
        responses={200: OutputSerializer, 400: _errors("invalid")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        stats = selectors.complaint_stats(
            user=request.user, month=data.get("month"), district=data.get("district"), category=data.get("category")
        )
        return Response(self.OutputSerializer(stats).data)
