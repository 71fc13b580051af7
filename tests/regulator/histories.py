"""Merchants with known six-month histories, built through the real services with the clock moved:
the kinds of business a regulator tells apart at a glance."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import time_machine

from complaints.models import Complaint
from consumers.models import Card
from consumers.services import redemption_confirm, redemption_reject, redemption_request
from merchants.models import Merchant
from tests.cards import builders as b

BEIJING = ZoneInfo("Asia/Shanghai")
AT = datetime(2026, 6, 30, 20, 0, tzinfo=BEIJING)  # the moment every history is scored at
START = AT - timedelta(days=180)


def _at(day: int, hour: int = 10) -> datetime:
    return (START + timedelta(days=day)).replace(hour=hour)


def _serve(card: Card, when: datetime, *, amount: int | None = None, reject: bool = False) -> None:
    with time_machine.travel(when, tick=False):
        redemption = redemption_request(merchant=card.merchant, card_id=card.pk, amount=amount)
        if reject:
            redemption_reject(consumer=card.consumer, redemption_id=redemption.pk)
        else:
            redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)


def _next_served(cards: list[Card]) -> Card | None:
    for card in cards:
        card = b.fresh(card)
        if card.state in (Card.State.COOLING_OFF, Card.State.ACTIVE) and (card.sessions_remaining or 0) > 0:
            return card
    return None


def _with_balance(cards: list[Card]) -> Card | None:
    for card in map(b.fresh, cards):
        if card.state in (Card.State.COOLING_OFF, Card.State.ACTIVE) and card.balance >= 5_000:
            return card
    return None


def complaint(merchant: Merchant, *, when: datetime, overdue: bool = False) -> Complaint:
    """A complaint filed at ``when``; ``overdue``: its deadline passed unanswered."""
    respond_by = when + timedelta(hours=48)
    return Complaint.objects.create(
        merchant=merchant,
        source=Complaint.Source.HOTLINE,
        category=Complaint.Category.SERVICE_UNAVAILABLE,
        description="classes stopped",
        respond_by=respond_by if not overdue else min(respond_by, AT - timedelta(hours=1)),
        created_at=when,
    )


def steady_salon() -> Merchant:
    """Sells a ten-session pack every ten days and gives a session every day: escrow stays small,
    services keep pace with sales, nobody complains."""
    m = b.merchant(category="beauty", name="Steady Salon")
    pack = b.session_pack(m, price=50_000, sessions=10)
    cards = []
    for day in range(180):
        if day % 10 == 0:
            cards.append(b.paid_card(pack, at=_at(day, 9)))
        card = _next_served(cards)
        if card is not None:
            _serve(card, _at(day, 11))
    return m


def blitz_gym() -> Merchant:
    """Five months of ordinary trade, then a discount blitz: in the last 30 days it sells many
    stored-value cards at 40 % off face value, while services go on at the old pace."""
    m = b.merchant(category="fitness", name="Blitz Gym")
    full = b.stored_value(m, price=100_000, face_value=100_000, unit_price=5_000)
    cheap = b.stored_value(m, price=60_000, face_value=100_000, unit_price=5_000)
    cards = []
    for day in range(150):
        if day % 10 == 0:
            cards.append(b.paid_card(full, at=_at(day, 9)))
        if day % 2 == 0:
            card = _with_balance(cards)
            if card is not None:
                _serve(card, _at(day, 11), amount=5_000)
    for n in range(15):
        cards.append(b.paid_card(cheap, at=_at(152 + 2 * n, 9)))
    for day in range(150, 180, 2):
        card = _with_balance(cards)
        if card is not None:
            _serve(card, _at(day, 11), amount=5_000)
    return m


def stalled_school() -> Merchant:
    """An education centre that sold and taught normally, then stopped giving classes 30 days ago
    while it kept selling; its students complain and it does not answer."""
    m = b.merchant(category="education", name="Stalled School")
    pack = b.session_pack(m, price=200_000, sessions=20)
    cards = []
    for day in range(180):
        if day % 12 == 0:
            cards.append(b.paid_card(pack, at=_at(day, 9)))
        if day < 150:
            card = _next_served(cards)
            if card is not None:
                _serve(card, _at(day, 11))
    for n, day in enumerate((160, 166, 179, 179)):
        complaint(m, when=_at(day, 15), overdue=n < 2)
    return m


def runaway() -> Merchant:
    """The pattern that precedes a runaway: a deep-discount blitz, services stopped, complaints
    piling up unanswered and consumers rejecting the services it claims to have given."""
    m = b.merchant(category="fitness", name="Runaway Fitness")
    full = b.stored_value(m, price=100_000, face_value=100_000, unit_price=5_000)
    cheap = b.stored_value(m, price=50_000, face_value=100_000, unit_price=5_000)
    cards = []
    for day in range(0, 150, 15):
        cards.append(b.paid_card(full, at=_at(day, 9)))
    for day in range(0, 150, 3):
        card = _with_balance(cards)
        if card is not None:
            _serve(card, _at(day, 11), amount=5_000, reject=day > 140)
    for n in range(20):
        cards.append(b.paid_card(cheap, at=_at(151 + n, 9)))
    for card in cards[-3:]:
        _serve(b.fresh(card), _at(178, 11), amount=5_000, reject=True)
    for n, day in enumerate((165, 168, 170, 172, 179, 179)):
        complaint(m, when=_at(day, 15), overdue=n < 4)
    return m
