"""Auth token and health check."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core import selectors, services


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    rule = serializers.CharField(
        required=False,
        help_text="On a refusal under a rules-profile rule: the rule's key in the profile (GET /api/v1/rules).",
    )
    basis = serializers.CharField(
        required=False, help_text="With rule: the provision the rule comes from, in the request's language."
    )
    reason = serializers.CharField(
        required=False,
        help_text="For a code with several causes (card_not_transferable, card_not_top_upable): which one.",
    )


def paginated_response(*, view, request, queryset, serializer) -> Response:
    """One page of ``queryset`` as ``{"count", "next", "previous", "results"}``."""
    from rest_framework.settings import api_settings

    paginator = api_settings.DEFAULT_PAGINATION_CLASS()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


class AuthTokenApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=256, trim_whitespace=False)
        otp = serializers.CharField(
            max_length=64,
            required=False,
            allow_blank=True,
            help_text=(
                "Regulators only: the current 6-digit code of the account's authenticator (TOTP, RFC 6238: "
                "30-second steps, SHA-1). Missing: 401 otp_required; wrong or already used: 401 otp_invalid. "
                "Consumers and merchants leave it out."
            ),
        )

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(
        operation_id="auth_token",
        description=(
            "用户名和密码换取 API 令牌；监管人员另需 `otp`（身份验证器当前的 6 位动态码）。"
            "A username and password for the API token; a regulator also sends `otp`, the current 6-digit code "
            "of the account's authenticator (each code is taken once)."
        ),
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(ErrorSerializer, description="invalid, invalid_credentials"),
            401: OpenApiResponse(
                ErrorSerializer,
                description="otp_required (a regulator without otp), otp_invalid (a wrong or already used code)",
            ),
            429: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "too_many_login_attempts (AXES_FAILURE_LIMIT failed passwords or codes in a row, or wrong "
                    "codes too fast for the authenticator's throttle)"
                ),
            ),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # Django's own request: the login throttle marks it, and its middleware reads the mark.
        token = services.auth_token_issue(request=request._request, **data.validated_data)
        return Response(self.OutputSerializer({"token": token}).data, status=status.HTTP_200_OK)


@require_GET
def healthz(request):
    database = selectors.database_status()
    broker = selectors.broker_status()
    healthy = database == "ok" and broker in ("ok", "embedded")
    body = {"status": "ok" if healthy else "degraded", "database": database, "broker": broker}
    last_seen = selectors.heartbeat_last_seen(name="worker") if database == "ok" else None
    body["worker_last_seen"] = last_seen.isoformat() if last_seen else None
    return JsonResponse(body, status=200 if healthy else 503)


@require_GET
def livez(request):
    """Liveness: the process answers, touching nothing else (no database, no broker)."""
    return JsonResponse({"status": "ok"})
