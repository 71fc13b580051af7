"""Filings (备案) for the regulator: the list (by state, overdue), one filing, accept and return; of
the regulator's jurisdiction (a filing of a merchant outside it is not found)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from core.permissions import IsRegulator
from merchants.api import FilingSerializer
from merchants.models import Filing
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.selectors.scoped import regulator_filing_get, regulator_filings
from regulator.services.filings import regulator_filing_accept, regulator_filing_return

NOTE_MAX = 2000


def _errors(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


class RegulatorFilingListApi(APIView):
    permission_classes = [IsRegulator]

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=Filing.State.choices, required=False)
        overdue = serializers.BooleanField(
            required=False, allow_null=True, default=None, help_text="true: required or returned past due_by."
        )

    @extend_schema(
        operation_id="regulator_filing_list",
        parameters=[FilterSerializer],
        responses={200: FilingSerializer(many=True), 400: _errors("invalid")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params.dict())
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        filings = regulator_filings(
            jurisdiction=jurisdiction_of(request.user), state=data.get("state"), overdue=data.get("overdue")
        )
        return paginated_response(view=self, request=request, queryset=filings, serializer=FilingSerializer)


class RegulatorFilingDetailApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(operation_id="regulator_filing_get", responses={200: FilingSerializer, 404: _errors("not_found")})
    def get(self, request, filing_id):
        filing = regulator_filing_get(jurisdiction=jurisdiction_of(request.user), filing_id=filing_id)
        return Response(FilingSerializer(filing).data)


# Accepting and returning refuse the same things: a bad body, an unknown filing, one not submitted.
_DECISION_RESPONSES = {
    200: FilingSerializer,
    400: _errors("invalid"),
    404: _errors("not_found"),
    409: _errors("filing_not_submitted"),
}


class RegulatorFilingAcceptApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=NOTE_MAX, required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="regulator_filing_accept",
        request=InputSerializer,
        responses=_DECISION_RESPONSES,
    )
    def post(self, request, filing_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        filing = regulator_filing_accept(filing_id=filing_id, regulator=request.user, note=data.validated_data["note"])
        return Response(FilingSerializer(filing).data)


class RegulatorFilingReturnApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        note = serializers.CharField(max_length=NOTE_MAX, help_text="What the merchant must correct.")

    @extend_schema(
        operation_id="regulator_filing_return",
        request=InputSerializer,
        responses=_DECISION_RESPONSES,
    )
    def post(self, request, filing_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        filing = regulator_filing_return(filing_id=filing_id, regulator=request.user, note=data.validated_data["note"])
        return Response(FilingSerializer(filing).data)
