"""A small API endpoint over the real plumbing (parser, fields, idempotency, error handler, ledger),
used by the core tests until the product endpoints exist. Nothing in it is mocked."""

from django.urls import include, path
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.fields import MoneyField, StrictIntegerField
from core.idempotency import idempotent
from escrow.models import Account
from escrow.services import city_wide_account, ledger_transfer

CALLS = {"deposit": 0}


class DepositApi(APIView):
    """Deposit into a card escrow account from custody: a money-moving POST."""

    class InputSerializer(serializers.Serializer):
        account = StrictIntegerField(min_value=1, max_value=2**63 - 1)
        amount = MoneyField(min_value=1)
        note = serializers.CharField(max_length=40, required=False)

    @idempotent
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        CALLS["deposit"] += 1
        entry = ledger_transfer(
            code="purchase",
            debit_account_id=city_wide_account(Account.Kind.CUSTODY).id,
            credit_account_id=data.validated_data["account"],
            amount=data.validated_data["amount"],
            idempotency_key=request.idempotency_key or f"deposit-{CALLS['deposit']}-{request.user.pk}",
        )
        body = {"entry": str(entry.pk), "amount": data.validated_data["amount"], "currency": "cny"}
        return Response(body, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("harness/deposit", DepositApi.as_view()),
    path("", include("config.urls")),
]

handler400 = "core.exceptions.json_bad_request"
handler404 = "core.exceptions.json_not_found"
handler500 = "core.exceptions.json_server_error"
