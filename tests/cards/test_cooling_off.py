"""The statutory cooling-off period, counted as the law counts it, across midnight and month ends."""

from datetime import datetime

import pytest
import time_machine

from consumers.models import Card
from consumers.rules import cooling_off_ends_at
from consumers.services import cards_activate_due, redemption_confirm, redemption_request
from core.clock import BEIJING
from refunds.errors import CoolingOffExpired
from refunds.services import refund_request
from tests.cards import builders

pytestmark = pytest.mark.django_db


def bj(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


@pytest.mark.parametrize(
    ("paid", "ends"),
    [
        ("2026-03-02 23:50", "2026-03-10 00:00"),  # API.md's example
        ("2026-03-02 00:00", "2026-03-10 00:00"),  # the purchase day is not counted, however early
        ("2026-01-31 12:00", "2026-02-08 00:00"),  # across a month end
        ("2026-02-25 09:00", "2026-03-05 00:00"),  # across February's end
        ("2028-02-25 09:00", "2028-03-04 00:00"),  # a leap year
        ("2026-12-28 18:00", "2027-01-05 00:00"),  # across the year
    ],
)
def test_deadline_is_midnight_beijing_of_purchase_day_plus_eight(paid, ends):
    assert cooling_off_ends_at(bj(paid)) == bj(ends)


def test_a_payment_late_at_night_utc_counts_by_the_beijing_day():
    # 2026-03-02 16:30 UTC is 2026-03-03 00:30 in Beijing: the purchase day is the 3rd.
    paid = datetime.fromisoformat("2026-03-02T16:30:00+00:00")
    assert cooling_off_ends_at(paid) == bj("2026-03-11 00:00")


def test_paid_card_shows_its_deadline_and_enters_cooling_off():
    card = builders.paid_card(builders.session_pack(builders.merchant()), at="2026-03-02 23:50 +0800")
    assert card.state == Card.State.COOLING_OFF
    assert card.cooling_off_ends_at == bj("2026-03-10 00:00")
    assert card.escrow_account.balance == card.price


def test_refund_one_second_before_the_deadline_returns_everything():
    card = builders.paid_card(builders.session_pack(builders.merchant()), at="2026-03-02 23:50 +0800")
    with time_machine.travel("2026-03-09 23:59:59 +0800", tick=False):
        refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    assert (refund.amount, refund.fee) == (card.price, 0)
    assert builders.fresh(card).state == Card.State.REFUNDED
    assert builders.invariant_holds(card)


def test_refund_at_the_deadline_is_cooling_off_expired_even_if_no_job_ran():
    card = builders.paid_card(builders.session_pack(builders.merchant()), at="2026-03-02 23:50 +0800")
    with time_machine.travel("2026-03-10 00:00:00 +0800", tick=False), pytest.raises(CoolingOffExpired):
        refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    assert builders.fresh(card).escrow_account.balance == card.price


def test_first_confirmed_service_ends_cooling_off_at_once():
    card = builders.paid_card(builders.session_pack(builders.merchant()), at="2026-03-02 10:00 +0800")
    with time_machine.travel("2026-03-03 10:00 +0800", tick=False):
        redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
        redemption_confirm(consumer=card.consumer, redemption_id=redemption.pk)
        assert builders.fresh(card).state == Card.State.ACTIVE
        with pytest.raises(CoolingOffExpired):
            refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")


def test_job_activates_only_cards_whose_period_has_ended():
    m = builders.merchant()
    early = builders.paid_card(builders.session_pack(m), at="2026-03-01 12:00 +0800")  # ends 03-09 00:00
    late = builders.paid_card(builders.session_pack(m), at="2026-03-02 12:00 +0800")  # ends 03-10 00:00
    with time_machine.travel("2026-03-09 00:00:01 +0800", tick=False):
        assert cards_activate_due() == 1
        assert cards_activate_due() == 0  # running again changes nothing
    assert builders.fresh(early).state == Card.State.ACTIVE
    assert builders.fresh(late).state == Card.State.COOLING_OFF


def test_cooling_off_days_is_a_setting(settings):
    settings.COOLING_OFF_DAYS = 3
    assert cooling_off_ends_at(bj("2026-03-02 12:00")) == bj("2026-03-06 00:00")
