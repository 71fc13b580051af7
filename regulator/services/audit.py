"""The audit log: one line per decision, written in the transaction that makes it."""

from __future__ import annotations

from typing import Any

from core import clock
from regulator.models import AuditEvent


def audit_record(
    *,
    verb: str,
    actor_id: int | None,
    merchant_id=None,
    target: str = "",
    reason: str = "",
    changes: dict[str, Any] | None = None,
    actor_label: str = "",
) -> AuditEvent:
    """One line of the audit log. Call inside the transaction that makes the change, so the line and
    the change commit (or vanish) together. ``changes`` maps a field to ``[before, after]``."""
    return AuditEvent.objects.create(
        actor_id=actor_id,
        actor_label=actor_label or ("" if actor_id else "system"),
        verb=verb,
        merchant_id=merchant_id,
        target=target,
        reason=reason,
        changes=changes or {},
        created_at=clock.now(),
    )
