"""The ledger's gauges for ``/metrics`` (``core.metrics``): the newest ledger check, read at scrape
time from its kept result (``LedgerCheck``, newest first by its index); the check itself reads the
whole journal and runs nightly, never per scrape."""

from __future__ import annotations

from core.metrics import Gauge, Value, age_seconds, metrics_register
from escrow.models import LedgerCheck

GAUGES = [
    Gauge("ledger_check_age_seconds", "Seconds since the newest ledger verification (absent: never verified)."),
    Gauge("ledger_check_ok", "1 if the newest ledger verification found the ledger sound, else 0."),
    Gauge("ledger_check_problems", "Problems the newest ledger verification found."),
    Gauge("ledger_check_entries", "Journal entries the newest ledger verification checked."),
    Gauge("ledger_check_duration_seconds", "How long the newest ledger verification took."),
]


def ledger_check_read() -> dict[str, Value]:
    check = LedgerCheck.objects.order_by("-created_at", "-pk").first()
    if check is None:
        return {}
    return {
        "ledger_check_age_seconds": age_seconds(check.created_at),
        "ledger_check_ok": int(check.ok),
        "ledger_check_problems": check.problems_total,
        "ledger_check_entries": check.entries,
        "ledger_check_duration_seconds": check.milliseconds / 1000,
    }


def register() -> None:
    metrics_register("ledger", gauges=GAUGES, read=ledger_check_read)
