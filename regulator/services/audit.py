"""The audit log: one line per decision, written in the transaction that makes it."""

from __future__ import annotations

from typing import Any

from core import clock
from core.web import client_ip
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


# --- sign-ins (等保: every sign-in and every failure of an administrator is on record) ----------------
# Django's auth signals call these (regulator.apps): a regulator's sign-in on the pages (after the
# code) or for an API token, each refused password or code, and each end of a session.

LOGIN_FAILURES = ("password", "locked_out", "otp_required", "otp_invalid", "otp_throttled")


def _address(request) -> str | None:
    return client_ip(request) if request is not None else None


def _channel(request) -> str:
    return "token" if request is not None and request.path.startswith("/api/") else "session"


def audit_sign_in(*, user, request) -> AuditEvent:
    """A regulator signed in with both factors: ``target`` says where (``session`` or ``token``)."""
    return audit_record(
        verb="login", actor_id=user.pk, target=_channel(request), changes={"address": [None, _address(request)]}
    )


def audit_sign_in_failed(*, user, request, reason: str) -> AuditEvent:
    """A refused sign-in to a regulator's account; ``reason`` is one of ``LOGIN_FAILURES``."""
    return audit_record(
        verb="login_failed",
        actor_id=user.pk,
        target=_channel(request),
        reason=reason,
        changes={"address": [None, _address(request)]},
    )


def audit_sign_out(*, user, request, reason: str = "") -> AuditEvent:
    """A regulator's session ended: logged out, or ``reason="idle"``."""
    return audit_record(
        verb="logout", actor_id=user.pk, target="session", reason=reason, changes={"address": [None, _address(request)]}
    )


def audit_report_recorded(*, actor_id: int, merchant_id) -> AuditEvent:
    """A merchant's audit report (PDF) was handed to a regulator: an export like the lists'."""
    return audit_record(verb="export", actor_id=actor_id, merchant_id=merchant_id, target=f"report:{merchant_id}.pdf")
