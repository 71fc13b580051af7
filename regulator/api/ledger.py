"""The regulator's view of the ledger: its verification and the reconciliations with the gateway.

Both are the whole book's for every regulator, a district regulator's too: the ledger is one book
(custody checked as one total over every merchant's custody account, hash chains across every
merchant), its verdict and the bank's balance name no
merchant. The entries themselves are scoped (the audit log, the journal export): see
``regulator.selectors.jurisdiction``."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import IsRegulator
from escrow import selectors as ledger_selectors


class LedgerVerifyApi(APIView):
    permission_classes = [IsRegulator]

    class OutputSerializer(serializers.Serializer):
        balanced = serializers.BooleanField()
        chain_ok = serializers.BooleanField()
        custody_matches = serializers.BooleanField()
        accounts_match = serializers.BooleanField()
        entries = serializers.IntegerField()
        head_hash = serializers.CharField()
        problems = serializers.ListField(child=serializers.CharField())

    @extend_schema(operation_id="regulator_ledger_verify", responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(ledger_selectors.ledger_verify()).data)


class ReconciliationListApi(APIView):
    permission_classes = [IsRegulator]

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        gateway = serializers.CharField()
        ledger_custody = serializers.IntegerField()
        gateway_balance = serializers.IntegerField()
        difference = serializers.IntegerField()
        matches = serializers.BooleanField()
        created_at = serializers.DateTimeField()

    @extend_schema(operation_id="regulator_reconciliation_list", responses={200: OutputSerializer(many=True)})
    def get(self, request):
        from core.api import paginated_response
        from escrow.models import Reconciliation

        rows = Reconciliation.objects.order_by("-created_at", "-pk")
        if request.query_params.get("discrepancies") in ("1", "true"):
            rows = rows.exclude(difference=0)
        return paginated_response(view=self, request=request, queryset=rows, serializer=self.OutputSerializer)
