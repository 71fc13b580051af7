"""Refunds' gauges for ``/metrics`` (``core.metrics``): refunds the gateway refused every time and
refunds unpaid past their deadline, each one count on the (state, ...) indexes."""

from __future__ import annotations

from core import clock
from core.metrics import Gauge, Value, metrics_register
from refunds.models import Refund

GAUGES = [
    Gauge("refunds_failed", "Refunds the gateway refused every time, waiting for an operator's retry."),
    Gauge("refunds_overdue", "Refunds unpaid past their deadline (due_by), failed ones included."),
    Gauge("refunds_pending", "Refunds booked and not yet paid by the gateway."),
]


def refunds_read() -> dict[str, Value]:
    unpaid = (Refund.State.PENDING, Refund.State.FAILED)
    return {
        "refunds_failed": Refund.objects.filter(state=Refund.State.FAILED).count(),
        "refunds_overdue": Refund.objects.filter(state__in=unpaid, due_by__lt=clock.now()).count(),
        "refunds_pending": Refund.objects.filter(state=Refund.State.PENDING).count(),
    }


def register() -> None:
    metrics_register("refunds", gauges=GAUGES, read=refunds_read)
