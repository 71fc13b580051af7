"""Periods counted in days, as the Civil Code counts them, on China's holiday calendar.

- The day the period starts from is not counted (Civil Code art. 201): a period of ``days`` days
  from ``start`` has ``start + days`` as its last day, and ends at 24:00 Beijing time of that day
  (art. 203), i.e. at 00:00 of the next.
- When the last day is a statutory holiday, the period runs to the end of the first working day
  after it (art. 203). Ordinary weekends do not extend it: the platform counts calendar days (API.md).
- Statutory holidays and make-up workdays come from the chinesecalendar package; the active rules
  profile may add years the package does not have yet (its ``calendar``), and then its list for that
  year is the one used. A year neither has cannot be told: the period is not extended there, and
  ``calendar_gaps()`` names the year so that an operator updates the package or the profile.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from functools import cache

import chinese_calendar

from core import clock
from core.rules import Profile, rules_active


@cache
def _package_covers(year: int) -> bool:
    try:
        chinese_calendar.get_holiday_detail(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def package_years() -> tuple[int, int]:
    """The first and last year chinesecalendar has data for."""
    years = [year for year in range(1990, 2100) if _package_covers(year)]
    return years[0], years[-1]


def _day_kind(day: date, profile: Profile) -> str | None:
    """``"holiday"`` (statutory), ``"workday"`` (a working day, make-up ones included) or ``"rest"``
    (an ordinary weekend); None when neither the profile nor the package covers the year."""
    extra = profile.calendar.get(day.year)
    if extra is not None:
        if day in extra.holidays:
            return "holiday"
        if day in extra.workdays or day.weekday() < 5:
            return "workday"
        return "rest"
    if not _package_covers(day.year):
        return None
    resting, name = chinese_calendar.get_holiday_detail(day)
    if not resting:
        return "workday"
    return "holiday" if name is not None else "rest"


def covered(year: int, profile: Profile | None = None) -> bool:
    """Whether the holidays of ``year`` are known (from the profile or the package)."""
    profile = profile or rules_active()
    return year in profile.calendar or _package_covers(year)


def last_day(start: date, days: int, profile: Profile | None = None) -> date:
    """The last day of a period of ``days`` days from ``start``: ``start + days``, or, when that is a
    statutory holiday, the first working day after it (a day in a year the calendar lacks counts
    as a working day)."""
    profile = profile or rules_active()
    day = start + timedelta(days=days)
    if _day_kind(day, profile) != "holiday":
        return day
    day += timedelta(days=1)
    while _day_kind(day, profile) in ("holiday", "rest"):
        day += timedelta(days=1)
    return day


def period_ends_at(start: date, days: int, profile: Profile | None = None) -> datetime:
    """The instant the period ends: 00:00 Beijing time after its last day (24:00 of the last day)."""
    return clock.local_midnight(last_day(start, days, profile) + timedelta(days=1))


def calendar_gaps(years: Iterable[int] | None = None, profile: Profile | None = None) -> list[int]:
    """The years among ``years`` (default: this Beijing year and the next, the ones deadlines
    being set now fall in) whose holidays neither the package nor the profile has."""
    profile = profile or rules_active()
    if years is None:
        this_year = clock.local_date().year
        years = (this_year, this_year + 1)
    return sorted(year for year in set(years) if not covered(year, profile))


def working_days_after(start: date, days: int, profile: Profile | None = None) -> date:
    """The last day of a period of ``days`` working days from ``start`` ("within 5 working days"):
    ``start`` is not counted (art. 201); statutory holidays and ordinary weekends are skipped and
    make-up workdays count. A day in a year the calendar lacks counts when it is Monday to Friday."""
    profile = profile or rules_active()
    day, left = start, days
    while left > 0:
        day += timedelta(days=1)
        kind = _day_kind(day, profile)
        if kind == "workday" or (kind is None and day.weekday() < 5):
            left -= 1
    return day
