from django.urls import path

from notifications import api

urlpatterns = [
    path("notifications", api.NotificationListApi.as_view(), name="notifications"),
    path("notifications/<int:notification_id>/read", api.NotificationReadApi.as_view(), name="notification-read"),
    path("me", api.MeApi.as_view(), name="me"),
]
