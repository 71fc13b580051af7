"""Moving premises (API.md, Card life: ``POST /merchant/relocation``).

A merchant gives at least the rules profile's ``relocation_notice_days`` of notice of its new
address and district (else 400 ``notice_too_short``, naming the rule and its basis). Every consumer
whose card at it still holds escrow is told (``merchant_relocating``, a fan-out of the notifications
app over the audience ``card_holders``, in the background, in the app and on their SMS and
e-mail), and each may take a ``merchant_default`` refund (all that is left, no fee) from the notice
until ``refund_until``: the moving day plus the profile's ``relocation_refund_days_after``, so a
holder may also try the new premises before deciding. Sales and services go on as usual.

The window is written on the merchant row (``Merchant.relocation_refund_until``) as the closing day
is (``closes_on``): ``refunds.selectors.merchant_default_reasons`` reads it with the merchant, for a
page of cards without a query each. ``Relocation`` keeps each notice and what it replaced:
``notified → moved`` on the moving day (``relocations_due``, hourly: the new address and district
become the merchant's), or ``notified → cancelled`` when the merchant withdraws it before the move
(the window closes; refunds already taken stay taken).
"""

from __future__ import annotations

from datetime import date, timedelta

from django.db import transaction
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from core import clock
from core.errors import InvalidInput
from core.formatting import beijing_date
from core.rules import Rule, profile_version, rule, rule_label
from merchants.errors import MerchantNotActive, NoticeTooShort, RelocationNotPending, RelocationPending
from merchants.models import Merchant, Relocation
from merchants.registry import district_code, district_name
from notifications.models import Kind
from notifications.services import fanout_start

# A notice further ahead than this is refused: it tells holders nothing they can act on.
NOTICE_HORIZON_DAYS = 366


def relocation_notice_rule() -> Rule:
    """The rule that sets how many days' notice a move needs."""
    return rule("relocation_notice_days")


def relocation_refund_rule() -> Rule:
    """The rule that sets how many days after the move its holders may still take a refund."""
    return rule("relocation_refund_days_after")


def relocation_earliest_day(*, notice: Rule | None = None) -> date:
    """The first moving day a notice given today may name (a Beijing date)."""
    return clock.local_date() + timedelta(days=(notice or relocation_notice_rule()).value)


def notice_days_check(*, day: date, notice: Rule, field: str, what: str) -> None:
    """Refuse ``day`` (a moving day, the day of a change of operator) sooner than ``notice`` allows
    (400 ``notice_too_short`` with the rule and its basis) or more than a year ahead (400 ``invalid``).
    ``what`` names the event in the message ("Moving", "A change of operator")."""
    earliest = clock.local_date() + timedelta(days=notice.value)
    if day < earliest:
        message = _(
            "%(what)s needs %(days)s days' notice (%(rule)s, under %(basis)s): %(earliest)s at the earliest "
            "(Beijing time)."
        ) % {
            "what": what,
            "days": notice.value,
            "rule": rule_label(notice.key),
            "basis": notice.basis(get_language()),
            "earliest": beijing_date(earliest),
        }
        raise NoticeTooShort(message, errors={field: [message]}, rule=notice)
    if day > clock.local_date() + timedelta(days=NOTICE_HORIZON_DAYS):
        raise InvalidInput(errors={field: [_("At most a year ahead.")]})


def merchant_relocation_announce(*, merchant: Merchant, moves_on: date, address: str, district: str) -> Relocation:
    """Give notice of moving to ``address`` in ``district`` (a code, Chinese name or pinyin) on
    ``moves_on``; every holder with escrow left is told in the background. Returns the notice, with
    ``consumers_notified`` the number of people being told."""
    notice = relocation_notice_rule()
    notice_days_check(day=moves_on, notice=notice, field="moves_on", what=_("Moving"))
    code = district_code(district)
    if code is None:
        raise InvalidInput(errors={"district": [_("Not one of the city's districts.")]})
    address = address.strip()
    if not address:
        raise InvalidInput(errors={"address": [_("Give the new address.")]})
    refund_until = moves_on + timedelta(days=relocation_refund_rule().value)
    with transaction.atomic(durable=True):
        merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
        if merchant.status != Merchant.Status.ACTIVE:
            raise MerchantNotActive(_("A merchant that is closing or closed gives no notice of moving."))
        if address == merchant.address and code == merchant.district:
            raise InvalidInput(errors={"address": [_("This is the present address.")]})
        if Relocation.objects.filter(merchant=merchant, state=Relocation.State.NOTIFIED).exists():
            raise RelocationPending()
        now = clock.now()
        relocation = Relocation(
            merchant=merchant,
            moves_on=moves_on,
            address=address,
            district=code,
            old_address=merchant.address,
            old_district=merchant.district,
            refund_until=refund_until,
            rules_version=profile_version(),
            notified_at=now,
        )
        merchant.relocation_refund_until = refund_until
        merchant.save(update_fields=["relocation_refund_until"])
        job = fanout_start(
            kind=Kind.MERCHANT_RELOCATING,
            event_key=f"merchant_relocating:{relocation.pk}",
            params={
                "merchant": merchant.name,
                "address": f"{district_name(code)}{address}",
                "moves_on": moves_on.isoformat(),
                "refund_until_on": refund_until.isoformat(),
            },
            audience="card_holders",
            audience_arg=str(merchant.pk),
            merchant_id=merchant.pk,
            about_money=True,
        )
        relocation.consumers_notified = job.total
        relocation.save()
    return relocation


def merchant_relocation_cancel(*, merchant: Merchant) -> Relocation:
    """Withdraw the notice of a move still to come (409 ``relocation_not_pending`` otherwise): the
    refund window it opened closes (a window an earlier, completed move opened stays as it was)."""
    with transaction.atomic(durable=True):
        merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
        relocation = Relocation.objects.select_for_update().filter(merchant=merchant, state=Relocation.State.NOTIFIED)
        pending = relocation.first()
        if pending is None:
            raise RelocationNotPending()
        pending.cancel()
        pending.cancelled_at = clock.now()
        pending.save(update_fields=["state", "cancelled_at"])
        earlier = (
            Relocation.objects.filter(merchant=merchant, state=Relocation.State.MOVED).order_by("-moves_on").first()
        )
        merchant.relocation_refund_until = earlier.refund_until if earlier is not None else None
        merchant.save(update_fields=["relocation_refund_until"])
    return pending


def relocations_due(*, today: date | None = None) -> int:
    """Hourly: every notice whose moving day has come moves its merchant (the new address and
    district become the merchant's). Safe to run any number of times. Returns how many moved."""
    today = today or clock.local_date()
    due = Relocation.objects.filter(state=Relocation.State.NOTIFIED, moves_on__lte=today).values_list(
        "pk", "merchant_id"
    )
    moved = 0
    for relocation_id, merchant_id in due:
        with transaction.atomic(durable=True):
            # Merchant first, then its notice: the order the notice and its withdrawal lock them in.
            merchant = Merchant.objects.select_for_update().get(pk=merchant_id)
            relocation = Relocation.objects.select_for_update().get(pk=relocation_id)
            if relocation.state != Relocation.State.NOTIFIED:
                continue  # withdrawn meanwhile
            relocation.move()
            relocation.moved_at = clock.now()
            relocation.save(update_fields=["state", "moved_at"])
            merchant.address = relocation.address
            merchant.district = relocation.district
            merchant.save(update_fields=["address", "district"])
            moved += 1
    return moved
