"""The caller's notifications and preferences (API.md, Additions v1.1, Notifications)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import ErrorSerializer, paginated_response
from notifications import selectors, services
from notifications.models import Notification


class IsConsumerOrMerchant(BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.role in ("consumer", "merchant"))


class NotificationOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField()
    card = serializers.UUIDField(source="card_id", allow_null=True)
    merchant = serializers.UUIDField(source="merchant_id", allow_null=True)
    channels = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Notification
        fields = ["id", "kind", "title", "body", "card", "merchant", "channels", "created_at", "read_at"]


class NotificationListApi(APIView):
    permission_classes = [IsConsumerOrMerchant]

    @extend_schema(operation_id="notification_list", responses={200: NotificationOutputSerializer(many=True)})
    def get(self, request):
        return paginated_response(
            view=self,
            request=request,
            queryset=selectors.notifications_of_user(user=request.user),
            serializer=NotificationOutputSerializer,
        )


class NotificationReadApi(APIView):
    permission_classes = [IsConsumerOrMerchant]

    @extend_schema(
        operation_id="notification_read",
        request=None,
        responses={200: NotificationOutputSerializer, 404: OpenApiResponse(ErrorSerializer, description="not_found")},
    )
    def post(self, request, notification_id: int):
        notification = services.notification_mark_read(user=request.user, notification_id=notification_id)
        return Response(NotificationOutputSerializer(notification).data)


class MeApi(APIView):
    permission_classes = [IsConsumerOrMerchant]

    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(max_length=254, allow_blank=True, required=False)
        phone = serializers.CharField(max_length=20, allow_blank=True, required=False)
        notify_sms = serializers.BooleanField(required=False)
        notify_email = serializers.BooleanField(required=False)

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.CharField()
        email = serializers.CharField()
        phone = serializers.CharField()
        notify_sms = serializers.BooleanField()
        notify_email = serializers.BooleanField()

    def _out(self, user) -> dict:
        prefs = selectors.notification_settings_of_user(user=user)
        return self.OutputSerializer(
            {
                "username": user.username,
                "role": user.role,
                "email": user.email,
                "phone": prefs.phone,
                "notify_sms": prefs.notify_sms,
                "notify_email": prefs.notify_email,
            }
        ).data

    @extend_schema(operation_id="me_get", responses={200: OutputSerializer})
    def get(self, request):
        return Response(self._out(request.user))

    @extend_schema(
        operation_id="me_update",
        request=InputSerializer,
        responses={200: OutputSerializer, 400: OpenApiResponse(ErrorSerializer, description="invalid")},
    )
    def patch(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.notification_settings_set(user=request.user, **data.validated_data)
        return Response(self._out(request.user))
