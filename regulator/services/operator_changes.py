"""The regulator's decisions on changes of operator: ask for one on a merchant's behalf, approve it
(every holder is then asked to consent) or reject it. The merchants app does the work
(``merchants.services.operator_change``); each decision here is scoped to the regulator's
jurisdiction (a change of a merchant outside it is not found) and writes the audit log in the same
transaction."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from core.errors import NotFound
from core.models import User
from merchants.models import Merchant, OperatorChange
from merchants.selectors import operator_change_get
from merchants.services.operator_change import (
    operator_change_approve,
    operator_change_reject,
    operator_change_request,
)
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.services.audit import audit_record


def _audit(change: OperatorChange, *, verb: str, regulator: User, before: str | None) -> None:
    audit_record(
        verb=verb,
        actor_id=regulator.pk,
        merchant_id=change.merchant_id,
        target=f"operator_change:{change.pk}",
        reason=change.regulator_note or change.reason,
        changes={
            "state": [before, change.state],
            "operator": [change.old_operator_name, change.new_operator_name],
            "license_number": [change.old_license_number, change.new_license_number],
            "changes_on": [None, change.changes_on.isoformat()],
        },
    )


def regulator_operator_change_request(
    *,
    regulator: User,
    merchant_id: Any,
    new_operator_name: str,
    new_license_number: str,
    changes_on: date,
    reason: str = "",
) -> OperatorChange:
    """Ask for a change of operator on the merchant's behalf (it still needs approving)."""
    try:
        merchant = jurisdiction_of(regulator).merchants().get(pk=merchant_id)
    except (Merchant.DoesNotExist, ValueError, ValidationError) as exc:
        raise NotFound() from exc
    with transaction.atomic():
        change = operator_change_request(
            merchant_id=merchant.pk,
            new_operator_name=new_operator_name,
            new_license_number=new_license_number,
            changes_on=changes_on,
            requested_by=regulator,
            reason=reason,
        )
        _audit(change, verb="operator_change_request", regulator=regulator, before=None)
    return change


def regulator_operator_change_get(*, regulator: User, change_id: Any) -> OperatorChange:
    """One change of operator within the regulator's jurisdiction (else not found)."""
    return operator_change_get(change_id=change_id, merchants=jurisdiction_of(regulator).merchants())


def regulator_operator_change_approve(*, regulator: User, change_id: Any, note: str = "") -> OperatorChange:
    """Approve a requested change (``operator_change_not_requested``, ``operator_change_too_late``
    otherwise), with an audit line."""
    regulator_operator_change_get(regulator=regulator, change_id=change_id)
    with transaction.atomic():
        change = operator_change_approve(change_id=change_id, regulator=regulator, note=note)
        _audit(change, verb="operator_change_approve", regulator=regulator, before=OperatorChange.State.REQUESTED)
    return change


def regulator_operator_change_reject(*, regulator: User, change_id: Any, note: str) -> OperatorChange:
    """Reject a requested change with ``note`` (``operator_change_not_requested`` otherwise), with an
    audit line."""
    regulator_operator_change_get(regulator=regulator, change_id=change_id)
    with transaction.atomic():
        change = operator_change_reject(change_id=change_id, regulator=regulator, note=note)
        _audit(change, verb="operator_change_reject", regulator=regulator, before=OperatorChange.State.REQUESTED)
    return change
