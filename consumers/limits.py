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

A top-up waiting for its payment counts too, as face value its stored-value card will hold, so that
paying it cannot take the consumer over the limit (``with_top_ups_waiting`` reads it with the cards).
"""

from __future__ import annotations

from datetime import date, datetime

from django.db.models import OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from consumers.models import Card, TopUp
from core import clock
from merchants.models import Product
from merchants.services.limits import Collected, lessons_of

# The card columns ``card_collected`` reads, in its arguments' order (the last is the annotation
# ``with_top_ups_waiting`` adds).
HOLDING_FIELDS = ("kind", "sessions_remaining", "balance", "unit_price", "days", "valid_until", "top_ups_waiting")


def with_top_ups_waiting(cards: QuerySet[Card]) -> QuerySet[Card]:
    """The cards with ``top_ups_waiting``: the face value of their top-ups waiting for payment
    (in the same statement as the cards)."""
    waiting = (
        TopUp.objects.filter(card=OuterRef("pk"), state=TopUp.State.PENDING_PAYMENT)
        .values("card")
        .annotate(total=Sum("face_value"))
        .values("total")
    )
    return cards.annotate(top_ups_waiting=Coalesce(Subquery(waiting), 0))


def card_collected(
    *,
    kind: str,
    sessions_remaining: int | None,
    balance: int | None,
    unit_price: int | None,
    days: int | None,
    valid_until: datetime | None,
    today: date,
    top_ups_waiting: int = 0,
) -> Collected:
    """What one held card still counts in the education limit's measures on ``today`` (a
    stored-value card with the face value of its top-ups waiting for payment)."""
    if kind == Product.Kind.SESSION_PACK:
        return Collected(sessions=sessions_remaining or 0)
    if kind == Product.Kind.STORED_VALUE:
        value = (balance or 0) + (top_ups_waiting or 0)
        if not value or not unit_price:
            return Collected()
        return Collected(sessions=lessons_of(value=value, unit_price=unit_price))
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
