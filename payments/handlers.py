"""What the apps above payments do when the gateway reports a payment's outcome or a refund it paid.

Payments sit below the apps whose rules these are (floor 4; consumers 6, refunds 7): those apps
register their handlers here in their ``AppConfig.ready``, as outbox topics are registered, and
payments never imports them.

``payment decided``  ``handler(payment_external_id=, succeeded=)``: the payment succeeded or was
                     abandoned; it raises ``already_decided`` for a payment decided before (consumers).
``refund reported``  ``handler(payment_external_id=, paid=[refund, ...])``: the gateway says it paid
                     these refunds of the payment; run inside the webhook's transaction (refunds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class PaymentDecided:
    handler: Callable[..., Any]
    already_decided: type[Exception]


_payment_decided: PaymentDecided | None = None
_refund_reported: Callable[..., Any] | None = None


def payment_decided_register(handler: Callable[..., Any], *, already_decided: type[Exception]) -> None:
    global _payment_decided
    _payment_decided = PaymentDecided(handler=handler, already_decided=already_decided)


def refund_reported_register(handler: Callable[..., Any]) -> None:
    global _refund_reported
    _refund_reported = handler


def payment_decided() -> PaymentDecided:
    if _payment_decided is None:
        raise ImproperlyConfigured("no handler registered for a decided payment (is the consumers app installed?)")
    return _payment_decided


def refund_reported() -> Callable[..., Any]:
    if _refund_reported is None:
        raise ImproperlyConfigured("no handler registered for a reported refund (is the refunds app installed?)")
    return _refund_reported
