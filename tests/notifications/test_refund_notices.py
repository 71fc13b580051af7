"""The consumer is told when their refund is paid and when it is late, once each, whether the
refund went alone or in a mass refund's batch."""

from datetime import timedelta

import pytest
import time_machine

from core import clock
from core.outbox import outbox_deliver_many, outbox_due_ids
from notifications.models import Notification
from refunds.models import MassRefund
from refunds.services import mass_refund_start, refund_request, refunds_mark_overdue
from tests.cards import builders

pytestmark = pytest.mark.django_db


def notices(card, kind):
    return Notification.objects.filter(user=card.consumer.user, kind=kind, card_id=card.pk)


def test_a_paid_refund_tells_its_consumer_once_in_yuan(django_capture_on_commit_callbacks):
    gym = builders.merchant(name="阳光健身")
    card = builders.paid_card(builders.session_pack(gym, price=123_456))
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    refund.refresh_from_db()
    assert refund.state == "paid"
    (notice,) = notices(card, "refund_paid")
    assert "¥1,234.56" in notice.body and "阳光健身" in notice.body
    assert str(refund.pk) not in notice.body and "123456" not in notice.body
    assert notice.merchant_id == gym.pk and notice.about_money
    outbox_deliver_many(message_ids=outbox_due_ids())  # anything delivered again: still one
    assert notices(card, "refund_paid").count() == 1


def test_each_card_of_a_mass_refund_batch_is_told_once(django_capture_on_commit_callbacks):
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=10_000, sessions=2)
    cards = [builders.paid_card(pack) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        mass_refund_start(merchant_id=gym.pk, reason=MassRefund.Reason.REGULATOR_ORDER)
    assert MassRefund.objects.get().state == "done"
    for card in cards:
        (notice,) = notices(card, "refund_paid")
        assert "¥100.00" in notice.body


def test_a_late_refund_tells_its_consumer_once(settings, django_capture_on_commit_callbacks):
    settings.SANDBOX_REFUSE_REFUNDS = True
    settings.OUTBOX_MAX_ATTEMPTS = 1
    card = builders.paid_card(builders.session_pack(builders.merchant(), price=50_000))
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
    refund.refresh_from_db()
    assert refund.state == "failed" and not notices(card, "refund_paid").exists()
    assert refunds_mark_overdue() == 0 and not notices(card, "refund_late").exists()  # not due yet
    with time_machine.travel(clock.now() + timedelta(days=6), tick=False):
        assert refunds_mark_overdue() == 1
        assert refunds_mark_overdue() == 0
    (notice,) = notices(card, "refund_late")
    assert "¥500.00" in notice.body
