"""Closing down lawfully (API.md, Closing down).

A merchant gives at least the rules profile's ``closure_notice_days`` of notice (30 under Beijing's;
``closure_rules_version`` records the profile's version): sales stop at once and every consumer whose card still
holds escrow is told (``merchant_closing``, a fan-out of the notifications app over the audience
``card_holders``, in the background, in the app and on their SMS and e-mail). On the closing day
a job refunds every such card in full (``merchant_closure``) through a mass refund, in chunks;
when none is left the merchant is ``closed``. Money already released reaches the merchant in the
daily settlement as usual.

The cards and their refunds are the apps above (consumers, refunds): the merchant's state here is
the fact (``closing`` with its ``closes_on``), and what refunds does about it is the handler it
registers in ``merchants.handlers`` (``closure refunds``). A handler rather than an outbox message
or a refunds job reading the merchants' states: ``closures_due`` both starts the refunds and closes
the merchant once they are done, in one daily run, and the merchant's own transition stays here.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from core import clock
from core.formatting import beijing_date
from core.rules import Rule, profile_version, rule, rule_label
from merchants.errors import MerchantNotActive, NoticeTooShort
from merchants.handlers import closure_refunds
from merchants.models import Merchant
from notifications.models import Kind
from notifications.services import fanout_start


def closure_notice_rule() -> Rule:
    """The rule that sets how many days' notice a closure needs."""
    return rule("closure_notice_days")


def closure_earliest_day(*, notice: Rule | None = None) -> date:
    """The first closing day a notice given today may name (a Beijing date)."""
    return clock.local_date() + timedelta(days=(notice or closure_notice_rule()).value)


def merchant_closure_announce(*, merchant: Merchant, closes_on: date, reason: str) -> tuple[Merchant, int]:
    """Give notice of closing on ``closes_on``. Returns the merchant and how many consumers are being told."""
    notice = closure_notice_rule()
    earliest = closure_earliest_day(notice=notice)
    if closes_on < earliest:
        message = _(
            "Closing needs %(days)s days' notice (%(rule)s, under %(basis)s): "
            "%(earliest)s at the earliest (Beijing time)."
        ) % {
            "days": notice.value,
            "rule": rule_label(notice.key),
            "basis": notice.basis(get_language()),
            "earliest": beijing_date(earliest),
        }
        raise NoticeTooShort(message, errors={"closes_on": [message]}, rule=notice)
    with transaction.atomic(durable=True):
        merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
        if merchant.status != Merchant.Status.ACTIVE:
            raise MerchantNotActive(_("This merchant has already announced its closure."))
        merchant.announce_closure()
        merchant.closes_on = closes_on
        merchant.closure_reason = reason
        merchant.closure_announced_at = clock.now()
        merchant.closure_rules_version = profile_version()
        merchant.save(
            update_fields=["status", "closes_on", "closure_reason", "closure_announced_at", "closure_rules_version"]
        )
        job = fanout_start(
            kind=Kind.MERCHANT_CLOSING,
            event_key=f"merchant_closing:{merchant.pk}",
            params={"merchant": merchant.name, "closes_on": closes_on.isoformat()},
            audience="card_holders",
            audience_arg=str(merchant.pk),
            merchant_id=merchant.pk,
            about_money=True,
        )
    return merchant, job.total


def closures_due(*, today: date | None = None) -> int:
    """Daily: start refunding the cards of every merchant whose closing day has come, and mark
    closed those with none left. Returns how many merchants it acted on."""
    today = today or clock.local_date()
    refunds = closure_refunds()
    acted = 0
    due = Merchant.objects.filter(status=Merchant.Status.CLOSING, closes_on__lte=today).values_list("pk", flat=True)
    for merchant_id in due:
        acted += 1
        if refunds.cards_left(merchant_id=merchant_id):
            refunds.start(merchant_id=merchant_id)
            continue
        with transaction.atomic(durable=True):
            merchant = Merchant.objects.select_for_update().get(pk=merchant_id)
            if merchant.status == Merchant.Status.CLOSING and not refunds.cards_left(merchant_id=merchant_id):
                merchant.close()
                merchant.save(update_fields=["status"])
    return acted
