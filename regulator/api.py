"""The regulator's API."""

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
