"""The arithmetic of API.md, as pure functions of integers and dates.

Every release rounds down and the last one sweeps what is left, so the releases of a card always
add up to exactly its price: rounding never creates or loses a fen.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from core import calendar, clock
from core.rules import rule


def cooling_off_ends_at(paid_at: datetime) -> datetime:
    """00:00 Beijing time of purchase day + cooling-off days + 1, later when the last day is a
    statutory holiday (core.calendar: Civil Code arts. 201 and 203).

    The purchase day is not counted and the period ends at 24:00 of its last day: paid on
    2026-03-02 at 23:50 Beijing time, returnable until 2026-03-10 00:00. The number of days is the
    rules profile's ``cooling_off_days`` (7 under Beijing's; the setting ``COOLING_OFF_DAYS`` overrides it).
    """
    return calendar.period_ends_at(clock.local_date(paid_at), rule("cooling_off_days").value)


def stored_value_release(*, amount: int, balance: int, price: int, face_value: int, escrow: int) -> int:
    """Fen released when ``amount`` of face value is used: ``floor(amount * price / face_value)``;
    the use that brings the balance to 0 releases all that is left in escrow."""
    if amount == balance:
        return escrow
    return min(amount * price // face_value, escrow)


def session_release(*, price: int, sessions: int, sessions_remaining: int, escrow: int) -> int:
    """Fen released by one session: ``floor(price / sessions)``; the last releases the rest."""
    if sessions_remaining == 1:
        return escrow
    return min(price // sessions, escrow)


def period_pass_earned(*, price: int, days: int, valid_from: date, today: date) -> int:
    """Fen a pass has earned at the start of ``today`` (Beijing): ``floor(price * days_elapsed /
    days)`` over the days fully passed, and all of it once its last day has ended."""
    elapsed = (today - valid_from).days
    if elapsed <= 0:
        return 0
    if elapsed >= days:
        return price
    return price * elapsed // days


def voluntary_refund_fee(*, escrow: int, refund_fee_bps: int) -> int:
    """``floor(escrow * refund_fee_bps / 10000)``."""
    return escrow * refund_fee_bps // 10_000


def dispute_window_ends_at(rejected_at: datetime) -> datetime:
    """Until when a merchant may contest a service rejected at ``rejected_at``: the rules profile's
    ``dispute_window_days`` later."""
    return rejected_at + timedelta(days=rule("dispute_window_days").value)


def dispute_decide_by(opened_at: datetime) -> datetime:
    """When a dispute opened at ``opened_at`` is dismissed if the regulator has not decided it: the
    rules profile's ``dispute_decision_days`` later."""
    return opened_at + timedelta(days=rule("dispute_decision_days").value)


def top_up_face_value(*, amount: int, price: int, face_value: int) -> int:
    """Face value a top-up of ``amount`` fen adds to a stored-value card: at the card's own rate
    (money paid to face value), ``floor(amount * face_value / price)``. Rounding down keeps the
    card's escrow covering its balance at the rate its releases use (``stored_value_release``)."""
    return amount * face_value // price
