"""The signed-in regulator and its jurisdiction (API.md, Additions v1.1: ``GET /api/v1/regulator/me``)."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import IsRegulator
from merchants.models import Merchant
from regulator.selectors.jurisdiction import jurisdiction_of


def _all_or_list(items: dict, description: str) -> dict:
    return {
        "oneOf": [
            {"type": "string", "enum": ["all"], "description": "Every one of them."},
            {"type": "array", "items": items, "minItems": 1},
        ],
        "description": description,
    }


@extend_schema_field(
    _all_or_list(
        {"type": "string", "pattern": r"^\d{6}$", "example": "110105"},
        'The districts overseen, as GB/T 2260 codes (e.g. 110105, 朝阳区), or "all".',
    )
)
class DistrictsField(serializers.JSONField):
    pass


@extend_schema_field(
    _all_or_list(
        {"type": "string", "enum": Merchant.Category.values},
        'The merchant categories overseen, or "all".',
    )
)
class CategoriesField(serializers.JSONField):
    pass


class RegulatorMeApi(APIView):
    permission_classes = [IsRegulator]

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        districts = DistrictsField()
        categories = CategoriesField()

    @extend_schema(
        operation_id="regulator_me",
        responses={200: OutputSerializer},
        description=(
            "The signed-in regulator's jurisdiction: the merchants in one of its districts and of one of its "
            "categories. Every other regulator call answers within it (anything outside is 404, as a missing "
            "one); the ledger's verification and the reconciliations are the whole city's."
        ),
    )
    def get(self, request):
        body = {"username": request.user.get_username(), **jurisdiction_of(request.user).as_dict()}
        return Response(self.OutputSerializer(body).data)
