"""Changes of operator for the regulator: the list (by state), one change with the progress of its
day's refunds, approve, reject, and asking for one on a merchant's behalf. Each is scoped to the
regulator's jurisdiction: a change of a merchant outside it answers 404, as a missing one."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from core.permissions import IsRegulator
from merchants.api import OperatorChangeInputSerializer, OperatorChangeSerializer
from merchants.models import OperatorChange
from merchants.selectors import operator_changes_for_regulator
from refunds.selectors import operator_change_refund_job
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.services.operator_changes import (
    regulator_operator_change_approve,
    regulator_operator_change_get,
    regulator_operator_change_reject,
    regulator_operator_change_request,
)

NOTE_MAX = 2000


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class RefundProgressSerializer(serializers.Serializer):
    state = serializers.CharField(help_text="queued, running, done or failed")
    done = serializers.IntegerField()
    total = serializers.IntegerField()


class RegulatorOperatorChangeSerializer(OperatorChangeSerializer):
    merchant_name = serializers.CharField(source="merchant.name")
    refunds = serializers.SerializerMethodField(
        help_text="From its day: the refund of the cards whose holders did not consent ({state, done, total}); "
        "null before."
    )

    @extend_schema_field(RefundProgressSerializer(allow_null=True))
    def get_refunds(self, change: OperatorChange) -> dict | None:
        job = operator_change_refund_job(operator_change_id=change.pk)
        return None if job is None else dict(RefundProgressSerializer(job).data)


class RegulatorOperatorChangeListApi(APIView):
    permission_classes = [IsRegulator]

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=OperatorChange.State.choices, required=False)

    @extend_schema(
        operation_id="regulator_operator_change_list",
        parameters=[FilterSerializer],
        responses={200: RegulatorOperatorChangeSerializer(many=True), 400: _errors("invalid")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        changes = operator_changes_for_regulator(
            merchants=jurisdiction_of(request.user).merchants(), state=filters.validated_data.get("state")
        )
        return paginated_response(
            view=self, request=request, queryset=changes, serializer=RegulatorOperatorChangeSerializer
        )


class RegulatorOperatorChangeDetailApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_operator_change_get",
        responses={200: RegulatorOperatorChangeSerializer, 404: _errors("not_found")},
    )
    def get(self, request, change_id):
        change = regulator_operator_change_get(regulator=request.user, change_id=change_id)
        return Response(RegulatorOperatorChangeSerializer(change).data)


_DECISION_RESPONSES = {
    200: RegulatorOperatorChangeSerializer,
    400: _errors("invalid"),
    404: _errors("not_found"),
    409: _errors("operator_change_not_requested, operator_change_too_late, merchant_not_active"),
}


class RegulatorOperatorChangeApproveApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=NOTE_MAX, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="regulator_operator_change_approve", request=InputSerializer, responses=_DECISION_RESPONSES
    )
    def post(self, request, change_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = regulator_operator_change_approve(
            regulator=request.user, change_id=change_id, note=data.validated_data["note"]
        )
        return Response(RegulatorOperatorChangeSerializer(change).data)


class RegulatorOperatorChangeRejectApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=NOTE_MAX, help_text="Why it is refused (the merchant sees it).")

    @extend_schema(
        operation_id="regulator_operator_change_reject", request=InputSerializer, responses=_DECISION_RESPONSES
    )
    def post(self, request, change_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = regulator_operator_change_reject(
            regulator=request.user, change_id=change_id, note=data.validated_data["note"]
        )
        return Response(RegulatorOperatorChangeSerializer(change).data)


class RegulatorMerchantOperatorChangeApi(APIView):
    """Ask for a change of operator on the merchant's behalf; it is approved like the merchant's own."""

    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_merchant_operator_change_request",
        request=OperatorChangeInputSerializer,
        responses={
            201: RegulatorOperatorChangeSerializer,
            400: _errors("invalid, invalid_license_number, notice_too_short (with rule and basis)"),
            404: _errors("not_found"),
            409: _errors("merchant_not_active, operator_change_pending"),
        },
    )
    def post(self, request, merchant_id):
        data = OperatorChangeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = regulator_operator_change_request(
            regulator=request.user, merchant_id=merchant_id, **data.validated_data
        )
        return Response(RegulatorOperatorChangeSerializer(change).data, status=status.HTTP_201_CREATED)
