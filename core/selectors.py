"""Reads of the shared plumbing."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings

from core import sql
from core.models import WorkerHeartbeat


def database_status() -> str:
    try:
        sql.database_ping()
    except Exception:  # noqa: BLE001 (any failure means "down" to a health probe)
        return "unavailable"
    return "ok"


def broker_status() -> str:
    if settings.BROKER_EMBEDDED:
        return "embedded"
    from kombu import Connection

    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception:  # noqa: BLE001
        return "unavailable"
    return "ok"


def heartbeat_last_seen(*, name: str) -> datetime | None:
    try:
        return WorkerHeartbeat.objects.get(name=name).last_seen
    except Exception:  # noqa: BLE001 (no table yet, or no beat)
        return None
