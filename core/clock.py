"""The platform's one clock.

Every rule reads the time from ``now()`` (tests move it with time-machine). Deadlines are computed in
Beijing time, the platform's local time, and stored in UTC.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

BEIJING = ZoneInfo("Asia/Shanghai")


def now() -> datetime:
    """The current instant, timezone-aware (UTC)."""
    return timezone.now()


def local(moment: datetime) -> datetime:
    """``moment`` seen on a Beijing wall clock."""
    return moment.astimezone(BEIJING)


def local_date(moment: datetime | None = None) -> date:
    """The Beijing calendar day of ``moment`` (default: now)."""
    return local(moment or now()).date()


def local_midnight(day: date) -> datetime:
    """00:00 Beijing time at the start of ``day``."""
    return datetime.combine(day, time(0, 0), tzinfo=BEIJING)


def business_day(moment: datetime) -> date:
    """The Beijing day whose settlement window holds ``moment``: a day's window is
    ``(its midnight, the next midnight]`` (``merchants.models.SettlementRun``), so an instant at
    midnight exactly closes the day before. Timestamps are stored to the microsecond."""
    return local(moment - timedelta(microseconds=1)).date()
