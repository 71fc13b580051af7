"""Settlement's gauges for ``/metrics`` (``core.metrics``): payouts held or refused (a partial index
keeps those few rows), and the daily settlement run (one row a day, by its unique date)."""

from __future__ import annotations

import calendar

from django.db.models import Count, Sum

from core.metrics import Gauge, Value, age_seconds, metrics_register
from merchants.models import Settlement, SettlementRun

GAUGES = [
    Gauge("payouts_held", "Payouts held (the merchant's releases are frozen, or it has no account to pay)."),
    Gauge("payouts_held_fen", "Fen owed to merchants in held payouts."),
    Gauge("payouts_failed", "Payouts the gateway refused every time, waiting for an operator."),
    Gauge(
        "settlement_last_done_age_seconds",
        "Seconds since the newest finished settlement run finished (absent: none has).",
    ),
    Gauge(
        "settlement_last_done_day_timestamp_seconds", "The Beijing day the newest finished run settled (its 00:00 UTC)."
    ),
    Gauge("settlement_runs_unfinished", "Settlement runs started and not finished (running now, or interrupted)."),
    Gauge(
        "settlement_oldest_unfinished_age_seconds",
        "Seconds since the oldest unfinished settlement run started (0: none).",
    ),
]


def settlements_read() -> dict[str, Value]:
    open_states = (Settlement.PayoutState.HELD, Settlement.PayoutState.FAILED)
    payouts: dict[str, tuple[int, int]] = {
        row["payout_state"]: (row["count"], row["amount"] or 0)
        for row in Settlement.objects.filter(payout_state__in=open_states)
        .values("payout_state")
        .annotate(count=Count("pk"), amount=Sum("payout_amount"))
        .order_by()
    }
    held_count, held_fen = payouts.get(Settlement.PayoutState.HELD, (0, 0))
    last_done = (
        SettlementRun.objects.filter(state=SettlementRun.State.DONE)
        .order_by("-date")
        .only("date", "finished_at")
        .first()
    )
    unfinished = list(
        SettlementRun.objects.filter(state=SettlementRun.State.RUNNING).values_list("started_at", flat=True)
    )
    values: dict[str, Value] = {
        "payouts_held": held_count,
        "payouts_held_fen": held_fen,
        "payouts_failed": payouts.get(Settlement.PayoutState.FAILED, (0, 0))[0],
        "settlement_runs_unfinished": len(unfinished),
        "settlement_oldest_unfinished_age_seconds": age_seconds(min(unfinished)) if unfinished else 0,
    }
    if last_done is not None:
        values["settlement_last_done_age_seconds"] = age_seconds(last_done.finished_at)
        values["settlement_last_done_day_timestamp_seconds"] = calendar.timegm(last_done.date.timetuple())
    return values


def register() -> None:
    metrics_register("settlement", gauges=GAUGES, read=settlements_read)
