"""The events wired now: a service to confirm, cooling-off ending, a complaint falling due."""

from __future__ import annotations

import pytest
import time_machine

from complaints.reminders import complaints_due_remind
from consumers.services import cooling_off_ending_notify, redemption_request
from notifications.models import Notification
from tests.cards import builders
from tests.complaints.complaints_builders import app_complaint

pytestmark = pytest.mark.django_db


def test_a_service_started_tells_the_consumer_with_the_link_to_confirm():
    gym = builders.merchant(name="阳光健身")
    card = builders.paid_card(builders.stored_value(gym))
    redemption = redemption_request(merchant=gym, card_id=card.pk, amount=3_000)
    notice = Notification.objects.get(user=card.consumer.user, kind="service_requested")
    assert notice.event_key == f"service_requested:{redemption.pk}"
    assert (notice.card_id, notice.merchant_id) == (card.pk, gym.pk)
    assert f"/c/cards/{card.pk}/" in notice.body and "¥30.00" in notice.body and "阳光健身" in notice.body
    assert "北京时间" in notice.body
    assert notice.channels == ["in_app", "sms"]


def test_cooling_off_ending_is_told_the_day_before_and_once():
    gym = builders.merchant()
    pack = builders.session_pack(gym)
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        card = builders.paid_card(pack)  # cooling-off ends 2026-03-10 00:00 Beijing time
    with time_machine.travel("2026-03-08 12:00 +0800", tick=False):
        assert cooling_off_ending_notify() == 0  # more than a day ahead
    with time_machine.travel("2026-03-09 01:00 +0800", tick=False):
        assert cooling_off_ending_notify() == 1
    with time_machine.travel("2026-03-09 02:00 +0800", tick=False):
        assert cooling_off_ending_notify() == 0  # the job runs hourly; the card is told once
    notice = Notification.objects.get(kind="cooling_off_ending")
    assert notice.user_id == card.consumer.user_id and notice.card_id == card.pk
    assert "2026年3月10日 00:00（北京时间）" in notice.body and "¥1,000.00" in notice.body
    with time_machine.travel("2026-03-10 01:00 +0800", tick=False):
        assert cooling_off_ending_notify() == 0  # over


def test_a_card_already_served_is_not_reminded():
    gym = builders.merchant()
    pack = builders.session_pack(gym)
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        card = builders.paid_card(pack)
        from tests.cards.test_redemptions import use

        use(card)  # the first service ends the cooling-off period
    with time_machine.travel("2026-03-09 01:00 +0800", tick=False):
        assert cooling_off_ending_notify() == 0


def test_complaint_due_within_six_hours_tells_the_merchant_once():
    gym = builders.merchant()
    consumer = builders.consumer()
    with time_machine.travel("2026-03-02 10:00 +0800", tick=False):
        complaint = app_complaint(consumer, gym)  # respond by 2026-03-04 10:00
        answered = app_complaint(consumer, gym)
    from complaints.services import complaint_respond

    complaint_respond(merchant=gym, complaint_id=answered.pk, text="We will refund.")
    with time_machine.travel("2026-03-04 03:00 +0800", tick=False):
        assert complaints_due_remind() == 0  # seven hours ahead
    with time_machine.travel("2026-03-04 05:00 +0800", tick=False):
        assert complaints_due_remind() == 1  # the answered one is not reminded
        assert complaints_due_remind() == 0
    notice = Notification.objects.get(kind="complaint_due")
    assert notice.user_id == gym.user_id and notice.event_key == f"complaint_due:{complaint.pk}"
    assert "2026年3月4日 10:00（北京时间）" in notice.title
