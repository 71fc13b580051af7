"""The regulator's merchant views: the risk list, one merchant's risk, actions and the audit log,
each of the regulator's jurisdiction (``regulator.selectors.jurisdiction``)."""

from django.utils.translation import get_language
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from core.fields import CurrencyField
from core.idempotency import idempotent
from core.permissions import IsRegulator
from merchants.models import Merchant
from merchants.registry import district_name
from regulator import tasks
from regulator.models import RegulatorAction, RiskLevel
from regulator.selectors import audit as audit_selectors
from regulator.selectors import risk as selectors
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.services.actions import merchant_action_take


def _language() -> str:
    return "en" if (get_language() or "").startswith("en") else "zh-hans"


def _flag(value: str | None) -> bool | None:
    if value in (None, ""):
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    from core.errors import InvalidInput

    raise InvalidInput(errors={"flagged": ["true or false"]})


class RegulatorMerchantListApi(APIView):
    permission_classes = [IsRegulator]

    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        name = serializers.CharField()
        status = serializers.CharField()
        district = serializers.SerializerMethodField()
        district_code = serializers.CharField(source="district")
        category = serializers.CharField()
        risk_score = serializers.IntegerField()
        risk_level = serializers.CharField()
        risk_computed_at = serializers.DateTimeField(allow_null=True)
        flagged = serializers.BooleanField()
        sales_frozen = serializers.BooleanField()
        releases_frozen = serializers.BooleanField()
        escrow_outstanding = serializers.IntegerField()
        active_cards = serializers.IntegerField()
        complaints_90d = serializers.IntegerField()
        currency = CurrencyField()

        def get_district(self, merchant: Merchant) -> str:
            return district_name(merchant.district, _language())

    @extend_schema(
        operation_id="regulator_merchant_list",
        parameters=[
            OpenApiParameter("risk_level", str, enum=[c for c, _ in RiskLevel.choices]),
            OpenApiParameter("district", str, description="District code, e.g. 110105"),
            OpenApiParameter("category", str, enum=[c for c, _ in Merchant.Category.choices]),
            OpenApiParameter("flagged", bool),
            OpenApiParameter("ordering", str, description="e.g. -risk_score (default), name, -escrow_outstanding"),
        ],
        responses={200: OutputSerializer(many=True), 400: ErrorSerializer},
    )
    def get(self, request):
        from merchants.registry import district_code

        params = request.query_params
        district = params.get("district") or None
        if district:
            district = district_code(district) or district
        rows = selectors.regulator_merchants(
            jurisdiction=jurisdiction_of(request.user),
            risk_level=params.get("risk_level") or None,
            district=district,
            category=params.get("category") or None,
            flagged=_flag(params.get("flagged")),
            ordering=params.get("ordering") or "-risk_score",
        )
        return paginated_response(view=self, request=request, queryset=rows, serializer=self.OutputSerializer)


class SignalSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.JSONField(help_text="A number, true/false, or null when it cannot be computed.")
    weight = serializers.IntegerField()
    contribution = serializers.FloatField(help_text="Points of the 0-100 score (not money).")
    explanation = serializers.SerializerMethodField()

    def get_explanation(self, signal: dict) -> str:
        return signal["explanation"][_language()]


class RiskOutputSerializer(serializers.Serializer):
    merchant = serializers.CharField()
    risk_score = serializers.IntegerField()
    risk_level = serializers.CharField()
    computed_at = serializers.DateTimeField(allow_null=True)
    signals = SignalSerializer(many=True)
    history = serializers.ListField(child=serializers.DictField(), help_text="[{computed_at, score, level}]")


def _risk_body(merchant: Merchant) -> dict:
    latest = selectors.risk_latest(merchant=merchant)
    history = [{"computed_at": at, "score": s, "level": lv} for at, s, lv in selectors.risk_history(merchant=merchant)]
    return {
        "merchant": str(merchant.pk),
        "risk_score": latest.score if latest else merchant.risk_score,
        "risk_level": latest.level if latest else merchant.risk_level,
        "computed_at": latest.computed_at if latest else None,
        "signals": latest.signals if latest else [],
        "history": history,
    }


class MerchantRiskApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(operation_id="regulator_merchant_risk", responses={200: RiskOutputSerializer, 404: ErrorSerializer})
    def get(self, request, merchant_id):
        merchant = selectors.merchant_get(jurisdiction=jurisdiction_of(request.user), merchant_id=merchant_id)
        return Response(RiskOutputSerializer(_risk_body(merchant)).data)

    @extend_schema(
        operation_id="regulator_merchant_risk_compute",
        request=None,
        responses={200: RiskOutputSerializer, 404: ErrorSerializer},
        description="Recompute this merchant's risk now (the nightly job does every merchant).",
    )
    def post(self, request, merchant_id):
        from regulator.services.risk import compute_risk

        merchant = selectors.merchant_get(jurisdiction=jurisdiction_of(request.user), merchant_id=merchant_id)
        compute_risk(merchant_ids=[merchant.pk])
        merchant.refresh_from_db()
        return Response(RiskOutputSerializer(_risk_body(merchant)).data)


class RiskComputeAllApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(
        operation_id="regulator_risk_compute_all",
        request=None,
        responses={
            202: OpenApiResponse(
                description="Queued: every merchant of the regulator's jurisdiction is scored in the background."
            )
        },
    )
    def post(self, request):
        tasks.compute_risk_task.delay(regulator_id=request.user.pk)
        return Response({"state": "queued"}, status=status.HTTP_202_ACCEPTED)


class ActionOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    merchant = serializers.CharField(source="merchant_id")
    action = serializers.CharField()
    reason = serializers.CharField()
    state = serializers.CharField()
    progress = serializers.SerializerMethodField()
    detail = serializers.CharField()
    actor = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_progress(self, action: RegulatorAction) -> dict:
        return selectors.action_progress(action)

    def get_actor(self, action: RegulatorAction) -> str | None:
        return action.actor.username if action.actor_id else None


class MerchantActionCreateApi(APIView):
    permission_classes = [IsRegulator]

    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=RegulatorAction.Action.choices)
        reason = serializers.CharField(max_length=2000)
        warning = serializers.CharField(
            max_length=500, required=False, help_text="flag: the public warning shown with the products."
        )

    @extend_schema(
        operation_id="regulator_merchant_action_list",
        responses={200: ActionOutputSerializer(many=True), 404: ErrorSerializer},
    )
    def get(self, request, merchant_id):
        merchant = selectors.merchant_get(jurisdiction=jurisdiction_of(request.user), merchant_id=merchant_id)
        rows = (
            RegulatorAction.objects.select_related("mass_refund", "actor")
            .filter(merchant=merchant)
            .order_by("-created_at", "-pk")
        )
        return paginated_response(view=self, request=request, queryset=rows, serializer=ActionOutputSerializer)

    @extend_schema(
        operation_id="regulator_merchant_action",
        request=InputSerializer,
        responses={
            202: ActionOutputSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
            409: OpenApiResponse(ErrorSerializer, description="action_not_allowed"),
        },
    )
    @idempotent
    def post(self, request, merchant_id):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        jurisdiction = jurisdiction_of(request.user)
        merchant = selectors.merchant_get(jurisdiction=jurisdiction, merchant_id=merchant_id)
        action = merchant_action_take(merchant_id=merchant.pk, actor_id=request.user.pk, **data.validated_data)
        action = selectors.action_get(jurisdiction=jurisdiction, action_id=action.pk)
        return Response(ActionOutputSerializer(action).data, status=status.HTTP_202_ACCEPTED)


class ActionDetailApi(APIView):
    permission_classes = [IsRegulator]

    @extend_schema(operation_id="regulator_action", responses={200: ActionOutputSerializer, 404: ErrorSerializer})
    def get(self, request, action_id):
        action = selectors.action_get(jurisdiction=jurisdiction_of(request.user), action_id=action_id)
        return Response(ActionOutputSerializer(action).data)


class AuditLogApi(APIView):
    permission_classes = [IsRegulator]

    class OutputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=["action", "journal"])
        id = serializers.CharField()
        created_at = serializers.DateTimeField()
        actor = serializers.CharField(allow_null=True)
        verb = serializers.CharField(help_text="The action's verb, or the journal entry's code.")
        merchant = serializers.CharField(allow_null=True)
        target = serializers.CharField()
        reason = serializers.CharField(help_text="The action's reason, or the entry's memo.")
        changes = serializers.DictField(help_text="{field: [before, after]}")
        amount = serializers.IntegerField(allow_null=True, help_text="fen moved (journal entries)")
        hash = serializers.CharField(allow_null=True)

    @extend_schema(
        operation_id="regulator_audit_log",
        parameters=[
            OpenApiParameter("kind", str, enum=["action", "journal"]),
            OpenApiParameter("merchant", str, description="Only this merchant's actions and money."),
        ],
        responses={200: OutputSerializer(many=True), 400: ErrorSerializer},
    )
    def get(self, request):
        from rest_framework.settings import api_settings

        params = request.query_params
        jurisdiction = jurisdiction_of(request.user)
        merchant = None
        if params.get("merchant"):
            merchant = selectors.merchant_get(jurisdiction=jurisdiction, merchant_id=params["merchant"])
        keys = audit_selectors.audit_log_keys(
            jurisdiction=jurisdiction, reader_id=request.user.pk, kind=params.get("kind") or None, merchant=merchant
        )
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(keys, request, view=self)
        rows = audit_selectors.audit_log_rows(list(page))
        return paginator.get_paginated_response(self.OutputSerializer(rows, many=True).data)
