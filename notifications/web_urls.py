"""The notices pages, mounted at ``/n/`` (config/urls.py)."""

from django.urls import path

from notifications import web

urlpatterns = [
    path("", web.notification_list, name="web-notifications"),
    path("<int:notification_id>/read/", web.notification_read, name="web-notification-read"),
    path("read-all/", web.notifications_read_all, name="web-notifications-read-all"),
]
