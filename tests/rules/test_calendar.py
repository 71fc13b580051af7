"""The Civil Code deadline on China's holiday calendar: the purchase day is not counted, the period
ends at 24:00 Beijing time of its last day, and a last day that is a statutory holiday moves to the
first working day after it (arts. 201 and 203). chinesecalendar 1.11.0 knows 2004-2026."""

import json
from datetime import date, datetime

import pytest
import time_machine

from consumers.models import Card
from consumers.rules import cooling_off_ends_at
from core import calendar
from core.clock import BEIJING
from core.rules import profile_parse
from refunds.errors import CoolingOffExpired
from refunds.services import refund_request
from tests.cards import builders
from tests.conftest import ROOT

BEIJING_FILE = ROOT / "core" / "profiles" / "beijing.json"


def bj(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def ends(start: str, days: int = 7, profile=None) -> datetime:
    return calendar.period_ends_at(date.fromisoformat(start), days, profile)


def profile_with_2027():
    """A test fixture, not 2027's real arrangement (not known here): National Day 1-7 October, and
    Saturday 9 October a make-up workday."""
    data = json.loads(BEIJING_FILE.read_text(encoding="utf-8"))
    data["calendar"] = {
        "2027": {
            "holidays": [f"2027-10-0{day}" for day in range(1, 8)],
            "workdays": ["2027-10-09"],
            "source": "test fixture",
        }
    }
    return profile_parse(data, path=BEIJING_FILE)


def test_an_ordinary_week_ends_at_midnight_after_the_seventh_day():
    assert ends("2026-03-02") == bj("2026-03-10 00:00")


def test_an_ordinary_saturday_as_last_day_is_not_extended():
    assert ends("2026-01-31") == bj("2026-02-08 00:00")  # last day Saturday 7 February


def test_a_last_day_on_a_make_up_saturday_is_a_working_day():
    # Saturday 14 February 2026 is worked in exchange for the Spring Festival: no extension,
    # although the holiday starts the next day.
    assert ends("2026-02-07") == bj("2026-02-15 00:00")


@pytest.mark.parametrize(
    ("start", "deadline"),
    [
        ("2026-02-08", "2026-02-25 00:00"),  # last day 15 February, the holiday's first day
        ("2026-02-10", "2026-02-25 00:00"),  # last day 17 February, Spring Festival's eve +1
        ("2026-02-16", "2026-02-25 00:00"),  # last day Monday 23 February, the holiday's last day
        ("2026-02-17", "2026-02-25 00:00"),  # last day 24 February, the first working day: as counted
    ],
)
def test_a_last_day_inside_spring_festival_2026_moves_to_the_first_working_day(start, deadline):
    assert ends(start) == bj(deadline)


@pytest.mark.parametrize(
    ("start", "deadline"),
    [
        ("2026-09-23", "2026-10-01 00:00"),  # last day 30 September: a working day
        ("2026-09-24", "2026-10-09 00:00"),  # last day 1 October
        ("2026-09-30", "2026-10-09 00:00"),  # last day 7 October: Thursday 8 October is worked
    ],
)
def test_a_last_day_inside_national_day_2026_moves_to_the_8th(start, deadline):
    assert ends(start) == bj(deadline)


def test_the_first_working_day_after_a_holiday_may_be_a_make_up_sunday():
    # New Year 2026: 1-3 January off, Sunday 4 January worked.
    assert ends("2025-12-26") == bj("2026-01-05 00:00")


def test_a_year_the_calendar_lacks_is_not_extended_and_is_reported():
    assert ends("2027-09-24") == bj("2027-10-02 00:00")  # 1 October 2027, unknown here
    assert calendar.calendar_gaps(years=[2025, 2026, 2027, 2028]) == [2027, 2028]
    assert calendar.package_years() == (2004, 2026)


def test_by_default_the_gaps_are_this_year_and_the_next():
    with time_machine.travel("2026-12-07 10:00 +0800", tick=False):
        assert calendar.calendar_gaps() == [2027]
    with time_machine.travel("2025-06-01 10:00 +0800", tick=False):
        assert calendar.calendar_gaps() == []


def test_a_profile_can_carry_a_year_the_package_lacks():
    profile = profile_with_2027()
    assert calendar.calendar_gaps(years=[2027], profile=profile) == []
    assert ends("2027-09-24", profile=profile) == bj("2027-10-09 00:00")  # 8 October 2027 is a Friday
    assert ends("2027-10-02", profile=profile) == bj("2027-10-10 00:00")  # the make-up Saturday, as counted


def test_a_holiday_period_running_into_an_unknown_year_stops_there():
    data = json.loads(BEIJING_FILE.read_text(encoding="utf-8"))
    data["calendar"] = {"2026": {"holidays": ["2026-12-31"], "workdays": [], "source": "test fixture"}}
    profile = profile_parse(data, path=BEIJING_FILE)
    # Last day 31 December (a holiday in this fixture); 1 January 2027 is unknown: taken as working.
    assert ends("2026-12-24", profile=profile) == bj("2027-01-02 00:00")


def test_cooling_off_ends_at_uses_the_calendar():
    assert cooling_off_ends_at(bj("2026-09-30 23:50")) == bj("2026-10-09 00:00")
    assert cooling_off_ends_at(bj("2026-03-02 23:50")) == bj("2026-03-10 00:00")


@pytest.mark.django_db
def test_a_card_bought_before_national_day_can_be_returned_on_the_8th():
    card = builders.paid_card(builders.session_pack(builders.merchant()), at="2026-09-30 10:00 +0800")
    assert card.cooling_off_ends_at == bj("2026-10-09 00:00")
    with time_machine.travel("2026-10-08 23:59:59 +0800", tick=False):
        refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    assert (refund.amount, refund.fee) == (card.price, 0)
    assert builders.fresh(card).state == Card.State.REFUNDED


@pytest.mark.django_db
def test_the_extended_deadline_is_still_a_deadline():
    card = builders.paid_card(builders.session_pack(builders.merchant()), at="2026-09-30 10:00 +0800")
    with time_machine.travel("2026-10-09 00:00:00 +0800", tick=False), pytest.raises(CoolingOffExpired):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
