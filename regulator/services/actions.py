"""The regulator's actions against a merchant (API.md, Regulator): flags, freezes, refund orders.

Each action is one transaction: the merchant row is locked, the action's precondition checked, the
change made, and a ``RegulatorAction`` plus an ``AuditEvent`` (who, when, why, what changed) written
with it. Flags and freezes are ``done`` at once; a flag or a freeze also starts, in the same
transaction, a fan-out telling every consumer whose card there still holds escrow
(``merchant_flagged`` / ``merchant_frozen``, event key ``<kind>:<action id>``, see
``action_notify_key``), which runs in the background with its own progress.
``order_refunds`` stops sales and starts a mass refund in the same transaction; the action then
follows the mass refund (``queued → running → done``) through
``refunds.signals.mass_refund_changed`` and shows its progress.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _

from core import clock
from core.errors import NotFound
from merchants.models import Merchant
from merchants.services.settlement import settlements_release_held
from notifications.models import Kind
from notifications.services import fanout_start
from refunds.models import MassRefund
from refunds.services import mass_refund_start
from regulator.errors import ActionNotAllowed
from regulator.models import RegulatorAction
from regulator.selectors.jurisdiction import Jurisdiction, jurisdiction_of_actor
from regulator.services.audit import audit_record

Action = RegulatorAction.Action

# action → (merchant field, value it sets); the precondition is that the field does not hold it yet.
_TOGGLES: dict[str, tuple[str, bool]] = {
    Action.FLAG: ("flagged", True),
    Action.UNFLAG: ("flagged", False),
    Action.FREEZE_SALES: ("sales_frozen", True),
    Action.UNFREEZE_SALES: ("sales_frozen", False),
    Action.FREEZE_RELEASES: ("releases_frozen", True),
    Action.UNFREEZE_RELEASES: ("releases_frozen", False),
}
# actions that tell the merchant's card holders, and what
_NOTIFY: dict[str, str] = {
    Action.FLAG: Kind.MERCHANT_FLAGGED,
    Action.FREEZE_SALES: Kind.MERCHANT_FROZEN,
    Action.FREEZE_RELEASES: Kind.MERCHANT_FROZEN,
}


def action_notify_key(action: RegulatorAction) -> str | None:
    """The event key of the fan-out an action started (None: it tells nobody)."""
    kind = _NOTIFY.get(action.action)
    return f"{kind}:{action.pk}" if kind else None


def default_warning() -> str:
    """The public warning a flag puts on the merchant's products, in the platform's language."""
    with translation.override(settings.LANGUAGE_CODE):
        return _("The market regulator has flagged this merchant. Think carefully before buying a prepaid card.")


def _lock_merchant(merchant_id, *, jurisdiction: Jurisdiction) -> Merchant:
    """The merchant, locked; one outside the jurisdiction is not found."""
    try:
        return jurisdiction.merchants(Merchant.objects.select_for_update()).get(pk=merchant_id)
    except (Merchant.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound() from exc


def merchant_action_take(
    *, merchant_id, actor_id: int, action: str, reason: str, warning: str | None = None
) -> RegulatorAction:
    """Take ``action`` against the merchant for ``reason``. ``warning`` (flag only) is the public
    text shown with its products; by default a standard warning. A merchant outside the actor's
    jurisdiction is not found, and nothing is done to it (a refund order's background work then
    touches this one merchant's cards alone)."""
    jurisdiction = jurisdiction_of_actor(actor_id)
    with transaction.atomic():
        merchant = _lock_merchant(merchant_id, jurisdiction=jurisdiction)
        now = clock.now()
        record = RegulatorAction(merchant=merchant, actor_id=actor_id, action=action, reason=reason, created_at=now)
        if action in _TOGGLES:
            changes = _toggle(merchant=merchant, action=action, warning=warning, record=record)
            record.finish()
            record.finished_at = now
            record.save()
        elif action == Action.ORDER_REFUNDS:
            changes = _order_refunds(merchant=merchant, record=record, actor_id=actor_id)
        else:
            raise ActionNotAllowed(_("Unknown action."))
        audit_record(
            verb=action,
            actor_id=actor_id,
            merchant_id=merchant.pk,
            target=f"action:{record.pk}",
            reason=reason,
            changes=changes,
        )
    return record


def _toggle(*, merchant: Merchant, action: str, warning: str | None, record: RegulatorAction) -> dict:
    field, value = _TOGGLES[action]
    if getattr(merchant, field) == value:
        raise ActionNotAllowed(_("The merchant is already in the state this action would put it in."))
    changes: dict[str, list[Any]] = {field: [not value, value]}
    setattr(merchant, field, value)
    fields = [field]
    if field == "flagged":
        new_warning = (warning or default_warning()) if value else None
        changes["risk_warning"] = [merchant.risk_warning, new_warning]
        merchant.risk_warning = new_warning
        fields.append("risk_warning")
    merchant.save(update_fields=fields)
    if action == Action.UNFREEZE_RELEASES:
        # The payouts held while the releases were frozen go out now, once each.
        changes["payouts_released"] = [0, settlements_release_held(merchant_id=merchant.pk)]
    if (event_key := action_notify_key(record)) is not None:
        fanout_start(
            kind=_NOTIFY[action],
            event_key=event_key,
            params={"merchant": merchant.name},
            audience="card_holders",
            audience_arg=str(merchant.pk),
            merchant_id=merchant.pk,
            about_money=True,
        )
    return changes


def _order_refunds(*, merchant: Merchant, record: RegulatorAction, actor_id: int) -> dict:
    if RegulatorAction.objects.filter(
        merchant=merchant,
        action=Action.ORDER_REFUNDS,
        state__in=[RegulatorAction.State.QUEUED, RegulatorAction.State.RUNNING],
    ).exists():
        raise ActionNotAllowed(_("Refunds of this merchant's cards are already under way."))
    changes: dict[str, list[Any]] = {}
    if not merchant.sales_frozen:
        merchant.sales_frozen = True
        merchant.save(update_fields=["sales_frozen"])
        changes["sales_frozen"] = [False, True]
    job = mass_refund_start(merchant_id=merchant.pk, reason=MassRefund.Reason.REGULATOR_ORDER, actor_id=actor_id)
    record.mass_refund = job
    if job.state == MassRefund.State.RUNNING:
        record.start()
    elif job.state == MassRefund.State.DONE:
        record.finish()
        record.finished_at = clock.now()
    record.save()
    changes["cards_to_refund"] = [None, job.total]
    return changes


def action_follow_mass_refund(*, job: MassRefund) -> None:
    """Bring the action that ordered ``job`` (if any) to the job's state. Runs inside the
    transaction that changed the job."""
    record = RegulatorAction.objects.select_for_update().filter(mass_refund=job).first()
    if record is None or record.state == job.state:
        return
    if job.state in (MassRefund.State.RUNNING, MassRefund.State.DONE) and record.state == RegulatorAction.State.QUEUED:
        record.start()
    if job.state == MassRefund.State.DONE:
        record.finish()
        record.finished_at = job.finished_at or clock.now()
    elif job.state == MassRefund.State.FAILED:
        record.fail()
        record.detail = job.detail
        record.finished_at = clock.now()
    record.save(update_fields=["state", "detail", "finished_at"])
