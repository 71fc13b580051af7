"""A change of operator: another business takes over a merchant and its customers' cards.

The merchant (or the regulator on its behalf) asks for it, naming the new operator, its licence
number (a unified social credit code) and the day it takes over, at least the rules profile's
``operator_change_notice_days`` ahead (else 400 ``notice_too_short`` with the rule and its basis).
The regulator approves or rejects it. On approval every consumer whose card still holds escrow is
told (``merchant_operator_changing``, a fan-out over ``card_holders``) and asked, card by card, to
consent to continue with the new operator (``consumers.services.operator_consent_give``). On the day
(``operator_changes_due``, hourly) every card paid before it whose holder did not consent is refunded
in full as ``merchant_default``, by a mass refund that refunds register in ``merchants.handlers``
(chunked, resumable, each card once); once none is left the change is ``completed``: the new
operator's name and licence number become the merchant's.

States: ``requested → approved → completed``, or ``requested → rejected`` (``OperatorChange``).

Why the merchant row stays and only its operator's particulars change
--------------------------------------------------------------------
The other design, a new ``Merchant`` row for the new operator receiving the consenting cards, would
move each card to another merchant: its ``merchant`` and ``product`` re-pointed, a new user and
settlement account, and every reader that attributes by card (risk, the public record, the filing
triggers, the merchant's balance) split at the day. The ledger needs none of it. A card's money is
in its own escrow account (``escrow.models``: one ``card_escrow`` account per card), never in a
merchant's; a merchant's ``merchant_settlement`` account only holds what was already released to it.
So with the row kept, no fen moves at all: the consenting cards' escrow stays where it is, the
non-consenting cards are refunded once each by the usual refund entries, and the ledger verifies and
custody reconciles as on any day. Attribution stays right without a transfer entry: settlement runs
by day over the settlement account, and a statement of a day before the change names the operator
of that day (``merchants.selectors.merchant_particulars_on`` reads the old name and licence kept on
the completed change); risk keeps the merchant's history, as the new operator keeps its customers'
cards and obligations. The login stays the merchant's: it passes to the new operator with the shop.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core import clock
from core.errors import InvalidInput
from core.models import User
from core.rules import Rule, profile_version, rule
from merchants.errors import (
    InvalidLicenseNumber,
    MerchantNotActive,
    OperatorChangeNotRequested,
    OperatorChangePending,
    OperatorChangeTooLate,
)
from merchants.handlers import operator_change_refunds
from merchants.models import Merchant, OperatorChange
from merchants.registry import uscc_is_valid
from merchants.selectors import operator_change_get
from merchants.services.relocation import notice_days_check
from notifications.models import Kind
from notifications.services import fanout_start


def operator_change_notice_rule() -> Rule:
    """The rule that sets how many days ahead a change of operator must be asked for."""
    return rule("operator_change_notice_days")


def _licence_free(license_number: str, *, merchant: Merchant) -> str:
    """The licence number, normalised, if no other merchant has it (400 otherwise)."""
    license_number = license_number.strip().upper()
    if not uscc_is_valid(license_number):
        raise InvalidLicenseNumber(errors={"new_license_number": [str(InvalidLicenseNumber.default_detail)]})
    if license_number == merchant.license_number:
        raise InvalidInput(errors={"new_license_number": [_("This is the merchant's licence number now.")]})
    taken = (
        Merchant.objects.filter(license_number=license_number).exists()
        or OperatorChange.objects.filter(new_license_number=license_number, state__in=OperatorChange.OPEN).exists()
    )
    if taken:
        raise InvalidInput(errors={"new_license_number": [_("A merchant with this licence number is registered.")]})
    return license_number


def operator_change_request(
    *,
    merchant_id: Any,
    new_operator_name: str,
    new_license_number: str,
    changes_on: date,
    requested_by: User,
    reason: str = "",
) -> OperatorChange:
    """Ask for ``new_operator_name`` (licence ``new_license_number``) to take the merchant over on
    ``changes_on``. Runs in the caller's transaction if there is one (the regulator's audit line).
    One change at a time: 409 ``operator_change_pending`` while another awaits the regulator or its day."""
    notice = operator_change_notice_rule()
    notice_days_check(day=changes_on, notice=notice, field="changes_on", what=_("A change of operator"))
    new_operator_name = new_operator_name.strip()
    if not new_operator_name:
        raise InvalidInput(errors={"new_operator_name": [_("Give the new operator's name.")]})
    with transaction.atomic():
        merchant = Merchant.objects.select_for_update().get(pk=merchant_id)
        if merchant.status != Merchant.Status.ACTIVE:
            raise MerchantNotActive(_("A merchant that is closing or closed cannot change its operator."))
        license_number = _licence_free(new_license_number, merchant=merchant)
        if OperatorChange.objects.filter(merchant=merchant, state__in=OperatorChange.OPEN).exists():
            raise OperatorChangePending()
        try:
            with transaction.atomic():
                return OperatorChange.objects.create(
                    merchant=merchant,
                    changes_on=changes_on,
                    old_operator_name=merchant.name,
                    old_license_number=merchant.license_number,
                    new_operator_name=new_operator_name,
                    new_license_number=license_number,
                    reason=reason.strip(),
                    rules_version=profile_version(),
                    requested_by=requested_by,
                    requested_at=clock.now(),
                )
        except IntegrityError as exc:  # another merchant's change asked for the same licence meanwhile
            raise InvalidInput(
                errors={"new_license_number": [_("A merchant with this licence number is registered.")]}
            ) from exc


def _lock(change_id: Any) -> tuple[Merchant, OperatorChange]:
    """The change and its merchant, locked merchant first (the order every writer of either takes)."""
    change = operator_change_get(change_id=change_id)
    merchant = Merchant.objects.select_for_update().get(pk=change.merchant_id)
    change = OperatorChange.objects.select_for_update().get(pk=change.pk)
    change.merchant = merchant
    return merchant, change


def operator_change_approve(*, change_id: Any, regulator: User, note: str = "") -> OperatorChange:
    """Approve a requested change (409 ``operator_change_not_requested`` otherwise; 409
    ``operator_change_too_late`` once its day has come): every holder with escrow left is told and
    asked to consent, in the background. In the caller's transaction if there is one."""
    with transaction.atomic():
        merchant, change = _lock(change_id)
        if change.state != OperatorChange.State.REQUESTED:
            raise OperatorChangeNotRequested()
        if change.changes_on <= clock.local_date():
            raise OperatorChangeTooLate()
        if merchant.status != Merchant.Status.ACTIVE:
            raise MerchantNotActive(_("A merchant that is closing or closed cannot change its operator."))
        change.approve()
        change.decided_by = regulator
        change.decided_at = clock.now()
        change.regulator_note = note.strip()
        merchant.operator_changes_on = change.changes_on
        merchant.save(update_fields=["operator_changes_on"])
        job = fanout_start(
            kind=Kind.MERCHANT_OPERATOR_CHANGING,
            event_key=f"merchant_operator_changing:{change.pk}",
            params={
                "merchant": merchant.name,
                "operator": change.new_operator_name,
                "changes_on": change.changes_on.isoformat(),
            },
            audience="card_holders",
            audience_arg=str(merchant.pk),
            merchant_id=merchant.pk,
            about_money=True,
        )
        change.consumers_notified = job.total
        change.save(update_fields=["state", "decided_by", "decided_at", "regulator_note", "consumers_notified"])
    return change


def operator_change_reject(*, change_id: Any, regulator: User, note: str) -> OperatorChange:
    """Reject a requested change with ``note`` (409 ``operator_change_not_requested`` otherwise).
    In the caller's transaction if there is one."""
    with transaction.atomic():
        _merchant, change = _lock(change_id)
        if change.state != OperatorChange.State.REQUESTED:
            raise OperatorChangeNotRequested()
        change.reject()
        change.decided_by = regulator
        change.decided_at = clock.now()
        change.regulator_note = note.strip()
        change.save(update_fields=["state", "decided_by", "decided_at", "regulator_note"])
    return change


def operator_changes_due(*, today: date | None = None) -> int:
    """Hourly: for every approved change whose day has come, start refunding the cards whose holders
    did not consent, and complete the change once none is left. Safe to run any number of times.
    Returns how many changes it acted on."""
    today = today or clock.local_date()
    refunds = operator_change_refunds()
    due = OperatorChange.objects.filter(state=OperatorChange.State.APPROVED, changes_on__lte=today).values_list(
        "pk", flat=True
    )
    acted = 0
    for change_id in due:
        acted += 1
        if refunds.cards_left(operator_change_id=change_id):
            refunds.start(operator_change_id=change_id)
            continue
        with transaction.atomic(durable=True):
            merchant, change = _lock(change_id)
            if change.state != OperatorChange.State.APPROVED or refunds.cards_left(operator_change_id=change_id):
                continue
            # What the change replaces, as it is now (kept for the statements of earlier days).
            change.old_operator_name = merchant.name
            change.old_license_number = merchant.license_number
            change.complete()
            change.completed_at = clock.now()
            change.save(update_fields=["state", "old_operator_name", "old_license_number", "completed_at"])
            merchant.name = change.new_operator_name
            merchant.license_number = change.new_license_number
            merchant.operator_changes_on = None
            merchant.save(update_fields=["name", "license_number", "operator_changes_on"])
    return acted
