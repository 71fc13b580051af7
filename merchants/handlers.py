"""What the apps above merchants tell and do for them, registered here in their ``AppConfig.ready``.

Merchants sit on floor 5, below the cards (consumers, 6) and their refunds (refunds, 7), yet a
merchant's own figures need a little of their data, and its closing day needs their work. As
``payments.handlers`` does for a payment's outcome, the apps above register what they answer and
merchants never import them:

``escrow outstanding``  ``provider(merchant_id=) -> int``: fen its customers' cards still hold in
                        escrow, for the merchant's balance (consumers).
``card figures``        ``provider(merchant_id=) -> (collected, unredeemed)``: fen ever paid for its
                        cards, and how many of its cards still hold escrow (not fully redeemed), for
                        the filing triggers (consumers).
``refund counts``       ``provider(since=, cutoff=) -> {merchant_id: n}``: refunds of each merchant's
                        cards booked in the window ``(since, cutoff]``, for its settlement (refunds).
``closure refunds``     ``cards_left(merchant_id=) -> bool``: whether any card of the merchant still
                        holds escrow; ``start(merchant_id=)``: refund every such card in full, in the
                        background, once (refunds). A closing merchant's day has come: the closure job
                        starts them, and closes the merchant once none is left.
``operator change refunds`` ``cards_left(operator_change_id=) -> bool``: whether any card of the change's
                        merchant, paid before its day, still holds escrow without its holder's consent
                        to continue; ``start(operator_change_id=)``: refund every such card in full
                        (``merchant_default``), in the background, once (refunds). The day of a change
                        of operator has come: the job starts them, and completes the change once none
                        is left.

These are not outbox topics because each answer is needed at once, in the caller's own flow: the
balance in the same response, the counts in the same settlement, and the closing day's refunds
started by the same daily run that finds the day has come, which closes the merchant once they are
done (API.md, Closing down).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class DayRefunds:
    """The refunds a day's job starts and waits for (a closing day, the day of a change of operator)."""

    cards_left: Callable[..., bool]
    start: Callable[..., Any]


_escrow_outstanding: Callable[..., int] | None = None
_refund_counts: Callable[..., Mapping[Any, int]] | None = None
_card_figures: Callable[..., tuple[int, int]] | None = None
_closure_refunds: DayRefunds | None = None
_operator_change_refunds: DayRefunds | None = None


def escrow_outstanding_register(provider: Callable[..., int]) -> None:
    global _escrow_outstanding
    _escrow_outstanding = provider


def card_figures_register(provider: Callable[..., tuple[int, int]]) -> None:
    global _card_figures
    _card_figures = provider


def refund_counts_register(provider: Callable[..., Mapping[Any, int]]) -> None:
    global _refund_counts
    _refund_counts = provider


def closure_refunds_register(*, cards_left: Callable[..., bool], start: Callable[..., Any]) -> None:
    global _closure_refunds
    _closure_refunds = DayRefunds(cards_left=cards_left, start=start)


def operator_change_refunds_register(*, cards_left: Callable[..., bool], start: Callable[..., Any]) -> None:
    global _operator_change_refunds
    _operator_change_refunds = DayRefunds(cards_left=cards_left, start=start)


def escrow_outstanding(*, merchant_id: Any) -> int:
    if _escrow_outstanding is None:
        raise ImproperlyConfigured("no provider of a merchant's escrow outstanding (is the consumers app installed?)")
    return _escrow_outstanding(merchant_id=merchant_id)


def card_figures(*, merchant_id: Any) -> tuple[int, int]:
    if _card_figures is None:
        raise ImproperlyConfigured("no provider of a merchant's card figures (is the consumers app installed?)")
    return _card_figures(merchant_id=merchant_id)


def refund_counts(*, since: datetime, cutoff: datetime) -> Mapping[Any, int]:
    if _refund_counts is None:
        raise ImproperlyConfigured("no provider of the refunds counted by settlement (is the refunds app installed?)")
    return _refund_counts(since=since, cutoff=cutoff)


def closure_refunds() -> DayRefunds:
    if _closure_refunds is None:
        raise ImproperlyConfigured("no handler refunds a closing merchant's cards (is the refunds app installed?)")
    return _closure_refunds


def operator_change_refunds() -> DayRefunds:
    if _operator_change_refunds is None:
        raise ImproperlyConfigured(
            "no handler refunds the cards of a change of operator (is the refunds app installed?)"
        )
    return _operator_change_refunds
