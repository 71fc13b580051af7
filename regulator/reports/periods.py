"""The periods a periodic report covers: a calendar month or quarter of Beijing time.

A period runs from 00:00 Beijing time on its first day up to, not including, 00:00 Beijing time on
the first day of the next one (stored moments are UTC: a card paid at 23:30 Beijing time on 31 March
is 15:30 UTC the same day and counts in March; one paid at 00:30 Beijing time on 1 April is 16:30
UTC on 31 March and counts in April). Labels are the ones people write: ``2026年11月``,
``2026年第3季度``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.utils.translation import gettext as _

from core import clock
from core.errors import InvalidInput

MONTH, QUARTER = "month", "quarter"
KINDS = (MONTH, QUARTER)
FIRST_YEAR = 2000  # the platform has no money before; a year before it is a typing error
_LAST = {MONTH: 12, QUARTER: 4}
_MONTHS = {MONTH: 1, QUARTER: 3}


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _first_of(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """A month (``number`` 1-12) or a quarter (``number`` 1-4) of ``year``."""

    kind: str
    year: int
    number: int

    @property
    def months(self) -> int:
        return _MONTHS[self.kind]

    @property
    def first_day(self) -> date:
        month = self.number if self.kind == MONTH else 3 * (self.number - 1) + 1
        return date(self.year, month, 1)

    @property
    def next_first_day(self) -> date:
        """The first day of the period after: the period ends at its 00:00 (Beijing)."""
        return _first_of(_month_index(self.first_day) + self.months)

    @property
    def last_day(self) -> date:
        return date.fromordinal(self.next_first_day.toordinal() - 1)

    @property
    def starts_at(self) -> datetime:
        return clock.local_midnight(self.first_day)

    @property
    def ends_at(self) -> datetime:
        return clock.local_midnight(self.next_first_day)

    @property
    def label(self) -> str:
        """``2026年11月`` or ``2026年第3季度`` (the reports are written in Chinese)."""
        if self.kind == MONTH:
            return f"{self.year}年{self.number}月"
        return f"{self.year}年第{self.number}季度"

    @property
    def span(self) -> str:
        """``2026年7月1日至9月30日`` (the first and last day, Beijing)."""
        first, last = self.first_day, self.last_day
        return f"{first.year}年{first.month}月{first.day}日至{last.month}月{last.day}日"

    @property
    def slug(self) -> str:
        """``2026-11`` or ``2026-Q3``: in file names."""
        return f"{self.year}-{self.number:02d}" if self.kind == MONTH else f"{self.year}-Q{self.number}"

    def previous(self) -> Period:
        return period_containing(date.fromordinal(self.first_day.toordinal() - 1), self.kind)

    def over_at(self, moment: datetime) -> bool:
        """Whether the period has ended at ``moment``."""
        return moment >= self.ends_at


def period_containing(day: date, kind: str) -> Period:
    """The month or quarter that Beijing day ``day`` lies in."""
    if kind == MONTH:
        return Period(MONTH, day.year, day.month)
    return Period(QUARTER, day.year, (day.month - 1) // 3 + 1)


def period_label(period: Period, language: str) -> str:
    """The period's name in a page's language: ``2026年第3季度``, or ``Q3 2026`` / ``November 2026``."""
    if not language.startswith("en"):
        return period.label
    if period.kind == QUARTER:
        return f"Q{period.number} {period.year}"
    return f"{period.first_day:%B} {period.year}"


def period_parse(*, kind: str, year: int, number: int, now: datetime | None = None) -> Period:
    """The period a regulator asked for, checked: a month 1-12 or a quarter 1-4 of a year from
    ``FIRST_YEAR``, begun by ``now`` (a period not over yet is reported up to the moment it is
    generated). ``InvalidInput`` names the field that is wrong."""
    if kind not in KINDS:
        raise InvalidInput(errors={"period": [_("Choose month or quarter.")]})
    if not FIRST_YEAR <= year <= 9999:
        raise InvalidInput(errors={"year": [_("Enter a year from %(first)d.") % {"first": FIRST_YEAR}]})
    if not 1 <= number <= _LAST[kind]:
        raise InvalidInput(errors={"number": [_("Enter a number from 1 to %(last)d.") % {"last": _LAST[kind]}]})
    period = Period(kind, year, number)
    if period.starts_at > (now or clock.now()):
        raise InvalidInput(errors={"number": [_("This period has not begun yet.")]})
    return period


def periods_recent(*, kind: str, count: int, today: date | None = None) -> list[Period]:
    """The ``count`` latest periods of ``kind``, the current one first (the page's choices)."""
    period = period_containing(today or clock.local_date(), kind)
    found = []
    for _n in range(count):
        found.append(period)
        period = period.previous()
    return found
