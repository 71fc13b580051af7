"""The card limits of the rules profile (core.rules), and the refusals that name them.

- ``max_price``: no card costs more (the national cap on a named prepaid card).
- The education limit, for merchants whose category the profile's education part covers: off-campus
  training may not collect more than 3 months or 60 class hours at once. It is counted in two
  measures, each against its own rule and never converted into the other:

  - class hours (``education_max_sessions``): a session pack's sessions, and a stored-value card's
    lessons, its face value divided by ``unit_price`` (the face value of the cheapest single
    service) and rounded down. A lesson is taken whole: floor is the number of lessons the card
    can actually buy, and a remainder below the unit price buys none;
  - days (``education_max_days``): a period pass's days.

  A plan is refused when it alone exceeds either (``product_limits_check``); a purchase when what
  the consumer holds unused at that merchant together with the new card exceeds the measure the
  new card adds to (``education_limit_check``; consumers.limits counts the holdings).

Each refusal is ``card_limit_exceeded`` carrying its rule (the error body adds ``rule`` and
``basis``) and says the limit in words, money in yuan, never a rule's key or fen.
"""

from __future__ import annotations

from typing import NamedTuple

from django.utils.translation import get_language
from django.utils.translation import gettext as _

from core.formatting import yuan
from core.rules import Rule, rule, rules_active
from merchants.errors import CardLimitExceeded
from merchants.models import Product


class Collected(NamedTuple):
    """What a card (or several) collects in the education limit's two measures."""

    sessions: int = 0
    days: int = 0

    def __add__(self, other: object) -> Collected:
        if not isinstance(other, Collected):
            return NotImplemented
        return Collected(self.sessions + other.sessions, self.days + other.days)


def lessons_of(*, value: int, unit_price: int) -> int:
    """Whole lessons ``value`` fen of face value buys at ``unit_price``: rounded down."""
    return value // unit_price


def plan_collected(
    *, kind: str, sessions: int | None, days: int | None, face_value: int | None, unit_price: int | None
) -> Collected:
    """What one card of a plan collects: a pack's sessions, a pass's days, a stored-value card's lessons."""
    if kind == Product.Kind.SESSION_PACK:
        return Collected(sessions=sessions or 0)
    if kind == Product.Kind.PERIOD_PASS:
        return Collected(days=days or 0)
    if face_value is None or not unit_price:
        return Collected()
    return Collected(sessions=lessons_of(value=face_value, unit_price=unit_price))


def education_rules(category: str) -> tuple[Rule, Rule] | None:
    """The education limit's two rules (class hours, days) where the profile gives the category
    its own education part; None elsewhere (a gym sells as many sessions as it likes)."""
    part = rules_active().industry_for(category)
    if part is None or not {"education_max_sessions", "education_max_days"} <= part.rules.keys():
        return None
    return rule("education_max_sessions", category=category), rule("education_max_days", category=category)


def _basis(found: Rule) -> str:
    return found.basis(get_language())


def price_check(*, category: str, price: int) -> None:
    """Refuse a card price above ``max_price``."""
    cap = rule("max_price", category=category)
    if price > cap.value:
        raise CardLimitExceeded(
            _("A card may cost at most %(max)s, the national cap on a prepaid card (%(basis)s).")
            % {"max": yuan(cap.value), "basis": _basis(cap)},
            errors={"price": [_("At most %(max)s.") % {"max": yuan(cap.value)}]},
            rule=cap,
        )


def card_cap_check(*, category: str, held: int, adding: int) -> None:
    """Refuse money paid into a card (a top-up) that would take what the card holds paid in and
    not yet used (``held``: its escrow, with top-ups waiting for their payment) over ``max_price``."""
    cap = rule("max_price", category=category)
    if held + adding > cap.value:
        room = max(0, cap.value - held)
        values = {"max": yuan(cap.value), "held": yuan(held), "room": yuan(room), "basis": _basis(cap)}
        raise CardLimitExceeded(
            _(
                "A card may hold at most %(max)s paid in and not yet used, the national cap on a prepaid card: "
                "this card holds %(held)s, so at most %(room)s more can be added (%(basis)s)."
            )
            % values,
            errors={"amount": [_("At most %(room)s.") % values]},
            rule=cap,
        )


def product_limits_check(
    *,
    category: str,
    kind: str,
    price: int,
    sessions: int | None,
    days: int | None,
    face_value: int | None,
    unit_price: int | None,
) -> None:
    """Refuse a plan whose price is over the cap, or, at an education merchant, one card of which
    alone collects more class hours or days than the education limit allows."""
    price_check(category=category, price=price)
    limits = education_rules(category)
    if limits is None:
        return
    max_sessions, max_days = limits
    one = plan_collected(kind=kind, sessions=sessions, days=days, face_value=face_value, unit_price=unit_price)
    if one.sessions > max_sessions.value:
        field = "sessions" if kind == Product.Kind.SESSION_PACK else "face_value"
        values = {"max": max_sessions.value, "count": one.sessions, "basis": _basis(max_sessions)}
        if kind == Product.Kind.SESSION_PACK:
            field_error = _("At most %(max)s class hours at once.") % values
        else:
            unit = {"unit_price": yuan(unit_price or 0)}
            field_error = _(
                "This face value buys %(count)s lessons at %(unit_price)s; at most %(max)s class hours at once."
            ) % (values | unit)
        raise CardLimitExceeded(
            _(
                "Off-campus training may collect at most %(max)s class hours at once; one card of this plan "
                "holds %(count)s (%(basis)s)."
            )
            % values,
            errors={field: [field_error]},
            rule=max_sessions,
        )
    if one.days > max_days.value:
        values = {"max": max_days.value, "count": one.days, "basis": _basis(max_days)}
        raise CardLimitExceeded(
            _(
                "Off-campus training may collect at most %(max)s days at once; one card of this plan "
                "covers %(count)s (%(basis)s)."
            )
            % values,
            errors={"days": [_("At most %(max)s days at once.") % values]},
            rule=max_days,
        )


def education_limit_check(*, category: str, held: Collected, adding: Collected, field: str = "product") -> None:
    """Refuse a purchase at an education merchant that would take what the consumer holds unused
    there (``held``) with the new card (``adding``) over the limit, in the measure the card adds to.

    A card that adds nothing to a measure is not refused over it, so a consumer already over (the
    limit was lowered, or the card came by transfer) may still buy in the other measure. ``field``
    is the input the refusal's field error names (a top-up's ``amount``)."""
    limits = education_rules(category)
    if limits is None:
        return
    max_sessions, max_days = limits
    total = held + adding
    if adding.sessions and total.sessions > max_sessions.value:
        values = {
            "max": max_sessions.value,
            "held": held.sessions,
            "count": adding.sessions,
            "basis": _basis(max_sessions),
        }
        raise CardLimitExceeded(
            _(
                "Off-campus training may collect at most %(max)s class hours at once: you hold %(held)s unused "
                "at this merchant and this card adds %(count)s (%(basis)s)."
            )
            % values,
            errors={field: [_("Over the limit of %(max)s class hours at once.") % values]},
            rule=max_sessions,
        )
    if adding.days and total.days > max_days.value:
        values = {"max": max_days.value, "held": held.days, "count": adding.days, "basis": _basis(max_days)}
        raise CardLimitExceeded(
            _(
                "Off-campus training may collect at most %(max)s days at once: your passes at this merchant "
                "have %(held)s days left and this card adds %(count)s (%(basis)s)."
            )
            % values,
            errors={field: [_("Over the limit of %(max)s days at once.") % values]},
            rule=max_days,
        )
