"""What a consumer holds unused at a merchant, as the education limit counts it
(merchants.services.limits holds the rules and the refusals).

A card counts while it is bought and not finished (``Card.LIMIT_COUNTED``: waiting for its
payment, in its cooling-off period, active, or frozen with money in escrow); an exhausted, refunded
or cancelled card counts nothing. What it counts is what is left on it:

- a session pack: its sessions remaining;
- a stored-value card: its face value left (``balance``) in whole lessons at ``unit_price``, rounded
  down (the same count a new card of the plan gets: ``face_value // unit_price``);
- a period pass: its days from today (Beijing date) until it ends, today included; a pass not yet
  started, all its days.
"""

from __future__ import annotations

from datetime import date, datetime

from core import clock
from merchants.models import Product
from merchants.services.limits import Collected, lessons_of

# The card columns ``card_collected`` reads, in its arguments' order.
HOLDING_FIELDS = ("kind", "sessions_remaining", "balance", "unit_price", "days", "valid_until")


def card_collected(
    *,
    kind: str,
    sessions_remaining: int | None,
    balance: int | None,
    unit_price: int | None,
    days: int | None,
    valid_until: datetime | None,
    today: date,
) -> Collected:
    """What one held card still counts in the education limit's measures on ``today``."""
    if kind == Product.Kind.SESSION_PACK:
        return Collected(sessions=sessions_remaining or 0)
    if kind == Product.Kind.STORED_VALUE:
        if not balance or not unit_price:
            return Collected()
        return Collected(sessions=lessons_of(value=balance, unit_price=unit_price))
    if valid_until is None:  # not started: every day is still to come
        return Collected(days=days or 0)
    # ``valid_until`` is 00:00 Beijing time after the pass's last day: the days before it are left.
    left = (clock.local_date(valid_until) - today).days
    return Collected(days=max(0, min(left, days or left)))


def holdings_collected(rows: list[tuple], *, today: date) -> Collected:
    """The sum of ``card_collected`` over rows of ``HOLDING_FIELDS``."""
    total = Collected()
    for row in rows:
        total = total + card_collected(**dict(zip(HOLDING_FIELDS, row, strict=True)), today=today)
    return total
