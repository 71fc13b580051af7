"""Reads of notifications: a user's own notices, the bell's count, the preferences, fan-out progress."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from core.models import User
from notifications.models import FanOut, Notification, NotificationSettings


def notifications_of_user(*, user: User) -> QuerySet[Notification]:
    """The user's notices, newest first."""
    return Notification.objects.filter(user=user).order_by("-created_at", "-pk")


def notifications_unread_count(*, user: User) -> int:
    """One COUNT on the partial index of unread notices."""
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notification_settings_of_user(*, user: User) -> NotificationSettings:
    """The user's preferences (the defaults, unsaved, for a user who never set any)."""
    found = NotificationSettings.objects.filter(user=user).first()
    return found or NotificationSettings(user=user, language=settings.LANGUAGE_CODE)


def fanout_for_event(*, event_key: str) -> FanOut | None:
    return FanOut.objects.filter(event_key=event_key).first()


def fanouts_for_events(*, event_keys: list[str]) -> list[FanOut]:
    return list(FanOut.objects.filter(event_key__in=event_keys).order_by("pk"))
