"""The rules profile's filing triggers at their boundaries, and the deadline in working days."""

from datetime import date, datetime

import pytest

from core import clock
from core.calendar import working_days_after
from core.rules import profile_load, rules_active
from merchants.selectors import FilingMeasures
from merchants.services.filing import filing_trigger
from tests.conftest import ROOT
from tests.filing.helpers import BALANCE_LINE, transport_profile

SHANGHAI = ROOT / "core" / "profiles" / "shanghai.json"


def measures(*, balance: int = 0, collected: int = 0, unredeemed: int = 0) -> FilingMeasures:
    return FilingMeasures(balance=balance, collected=collected, unredeemed=unredeemed)


# --- Beijing: the balance line ---------------------------------------------------------------------


def test_beijing_balance_one_fen_below_500000_yuan_requires_no_filing():
    assert filing_trigger(category="fitness", measures=measures(balance=BALANCE_LINE - 1)) is None


def test_beijing_balance_at_500000_yuan_requires_a_filing_citing_the_rule():
    trigger = filing_trigger(category="fitness", measures=measures(balance=BALANCE_LINE))
    assert trigger is not None
    assert (trigger.rule.key, trigger.measured, trigger.rule.value) == (
        "filing_balance_threshold",
        BALANCE_LINE,
        BALANCE_LINE,
    )
    assert "50万元" in trigger.rule.basis_zh
    assert (trigger.days_rule.key, trigger.days_rule.value, trigger.days_rule.unit) == (
        "filing_due_working_days",
        5,
        "working_days",
    )
    assert (trigger.profile.key, trigger.profile.version) == ("beijing", rules_active().version)


def test_the_balance_line_applies_to_every_category_outside_transport():
    for category in ("fitness", "beauty", "education", "catering", "laundry", "other"):
        assert filing_trigger(category=category, measures=measures(balance=BALANCE_LINE)) is not None


def test_collected_and_unredeemed_cards_do_not_count_outside_transport():
    assert filing_trigger(category="other", measures=measures(collected=10**10, unredeemed=10_000)) is None


# --- Beijing: the transport-style triggers --------------------------------------------------------


def test_transport_collected_100000_yuan_exactly_requires_no_filing():
    profile = transport_profile()
    assert filing_trigger(category="other", measures=measures(collected=10_000_000), profile=profile) is None


def test_transport_collected_one_fen_more_than_100000_yuan_requires_a_filing_in_5_working_days():
    profile = transport_profile()
    trigger = filing_trigger(category="other", measures=measures(collected=10_000_001), profile=profile)
    assert trigger is not None
    assert (trigger.rule.key, trigger.measured) == ("transport_filing_collected_threshold", 10_000_001)
    assert (trigger.days_rule.key, trigger.days_rule.value) == ("transport_filing_working_days", 5)
    assert "第三条" in trigger.rule.basis_zh


def test_transport_100_unredeemed_cards_require_no_filing_and_101_do():
    profile = transport_profile()
    assert filing_trigger(category="other", measures=measures(unredeemed=100), profile=profile) is None
    trigger = filing_trigger(category="other", measures=measures(unredeemed=101), profile=profile)
    assert trigger is not None
    assert (trigger.rule.key, trigger.measured, trigger.rule.value) == ("transport_filing_unredeemed_cards", 101, 100)


def test_a_transport_merchant_is_held_to_its_own_triggers_not_the_balance_line():
    profile = transport_profile()
    assert filing_trigger(category="other", measures=measures(balance=BALANCE_LINE * 2), profile=profile) is None


# --- Shanghai's own values -------------------------------------------------------------------------


@pytest.fixture
def shanghai(settings):
    settings.RULES_PROFILE = "shanghai"
    return profile_load(SHANGHAI)


def test_shanghai_balance_line_is_read_from_its_own_profile(shanghai):
    line = shanghai.rule("filing_balance_threshold").value
    assert filing_trigger(category="beauty", measures=measures(balance=line - 1)) is None
    trigger = filing_trigger(category="beauty", measures=measures(balance=line))
    assert trigger is not None
    assert trigger.profile.key == "shanghai"
    assert trigger.rule.basis_zh == shanghai.rule("filing_balance_threshold").basis_zh
    assert trigger.days_rule.value == shanghai.rule("filing_due_working_days", category="beauty").value


def test_shanghai_has_no_transport_triggers(shanghai):
    assert filing_trigger(category="other", measures=measures(collected=10_000_001, unredeemed=101)) is None


# --- the deadline ---------------------------------------------------------------------------------


def test_five_working_days_skip_national_day_2026_and_count_its_make_up_saturday():
    # 29 Sep (Tue) not counted; 30 Sep; 1-7 Oct holiday; 8, 9, 10 (make-up Saturday); 11 Sunday; 12.
    assert working_days_after(date(2026, 9, 29), 5) == date(2026, 10, 12)


def test_five_working_days_in_an_ordinary_week_skip_the_weekend():
    assert working_days_after(date(2026, 11, 4), 5) == date(2026, 11, 11)  # Wednesday → next Wednesday


@pytest.mark.django_db
def test_a_filing_required_before_national_day_is_due_on_12_october_at_midnight_beijing_time():
    from tests.cards import builders
    from tests.filing.helpers import require

    filing = require(builders.merchant(), at=datetime(2026, 9, 29, 10, 0, tzinfo=clock.BEIJING))
    assert filing.due_on == date(2026, 10, 12)
    assert filing.due_by == datetime(2026, 10, 13, 0, 0, tzinfo=clock.BEIJING)
    assert (filing.profile, filing.profile_version) == ("beijing", rules_active().version)
