"""Fan-out: one event to every holder of a merchant's cards, in chunks, resumable, each holder once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.test import Client

from core import clock
from core.models import OutboxMessage
from merchants.services.closure import merchant_closure_announce
from notifications.models import FanOut, Notification
from notifications.services import fanout_start, fanout_step, fanouts_resume, notification_settings_set
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.factories import UserFactory, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def gym():
    """A gym with five holders holding escrow, one consumer whose card is used up, one unpaid card."""
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=10_000, sessions=1)
    holders = [builders.paid_card(pack) for _ in range(5)]
    used = builders.paid_card(pack)
    use(used)  # exhausted: no escrow left
    return gym, holders, used


def start(gym):
    return fanout_start(
        kind="merchant_flagged",
        event_key=f"merchant_flagged:test:{gym.pk}",
        params={"merchant": gym.name},
        audience="card_holders",
        audience_arg=str(gym.pk),
        merchant_id=gym.pk,
        about_money=True,
    )


def test_fanout_walks_the_audience_in_chunks_with_progress(gym):
    merchant, holders, _ = gym
    job = start(merchant)
    assert (job.state, job.done, job.total) == ("queued", 0, 5)
    assert fanout_step(job_id=job.pk, chunk=2) is True
    job.refresh_from_db()
    assert (job.state, job.done, job.total) == ("running", 2, 5)
    assert fanout_step(job_id=job.pk, chunk=2) is True
    assert fanout_step(job_id=job.pk, chunk=2) is False
    job.refresh_from_db()
    assert (job.state, job.done, job.total) == ("done", 5, 5)
    told = set(Notification.objects.filter(kind="merchant_flagged").values_list("user_id", flat=True))
    assert told == {card.consumer.user_id for card in holders}  # not the used-up card's consumer
    assert fanout_step(job_id=job.pk, chunk=2) is False  # a finished job does nothing more
    sms = OutboxMessage.objects.filter(topic="notify.sms", idempotency_key__contains=":sms")
    assert sms.count() == 5 + 1  # each holder once, plus the used card's service request


def test_a_chunk_done_again_after_a_crash_tells_nobody_twice(gym):
    merchant, _, _ = gym
    job = start(merchant)
    fanout_step(job_id=job.pk, chunk=3)
    # The worker died after the commit of its notices but (as if) before the cursor moved: put the
    # job back to where it was and run the chunk again.
    FanOut.objects.filter(pk=job.pk).update(cursor=0, done=0)
    while fanout_step(job_id=job.pk, chunk=3):
        pass
    assert Notification.objects.filter(kind="merchant_flagged").count() == 5
    keys = OutboxMessage.objects.filter(
        idempotency_key__in=[
            f"notify:{pk}:sms"
            for pk in Notification.objects.filter(kind="merchant_flagged").values_list("pk", flat=True)
        ]
    )
    assert keys.count() == 5


def test_starting_the_same_event_again_returns_its_job(gym):
    merchant, _, _ = gym
    assert start(merchant).pk == start(merchant).pk
    assert FanOut.objects.count() == 1


def test_the_sweep_resumes_a_stale_job(gym, django_capture_on_commit_callbacks):
    merchant, _, _ = gym
    job = start(merchant)  # its first chunk's task was never queued (callbacks not run)
    assert fanouts_resume() == 0  # not stale yet
    FanOut.objects.filter(pk=job.pk).update(updated_at=F("updated_at") - timedelta(minutes=3))
    assert fanouts_resume() == 1  # tasks run inline in the tests
    job.refresh_from_db()
    assert (job.state, job.done) == ("done", 5)


def test_each_holder_is_told_in_their_own_language(gym):
    merchant, holders, _ = gym
    notification_settings_set(user=holders[0].consumer.user, language="en")
    job = start(merchant)
    fanout_step(job_id=job.pk)
    titles = dict(Notification.objects.filter(kind="merchant_flagged").values_list("user_id", "title"))
    assert titles[holders[0].consumer.user_id] == f"The regulator has flagged {merchant.name}"
    assert titles[holders[1].consumer.user_id] == f"监管部门已对 {merchant.name} 发出风险警示"


def test_closure_notifies_every_holder_through_the_notifications_service(gym, django_capture_on_commit_callbacks):
    merchant, holders, _ = gym
    with django_capture_on_commit_callbacks(execute=True):
        _, told = merchant_closure_announce(
            merchant=merchant, closes_on=clock.local_date() + timedelta(days=40), reason="lease ends"
        )
    assert told == 5
    notices = Notification.objects.filter(kind="merchant_closing", merchant_id=merchant.pk)
    assert set(notices.values_list("user_id", flat=True)) == {card.consumer.user_id for card in holders}
    assert all(n.channels == ["in_app", "sms"] for n in notices)
    assert FanOut.objects.get(event_key=f"merchant_closing:{merchant.pk}").state == "done"


@pytest.mark.parametrize("action, kind", [("flag", "merchant_flagged"), ("freeze_releases", "merchant_frozen")])
def test_regulator_flag_or_freeze_notifies_every_holder_and_the_action_page_shows_it(
    gym, action, kind, django_capture_on_commit_callbacks
):
    merchant, holders, _ = gym
    regulator = UserFactory(role="regulator")
    with django_capture_on_commit_callbacks(execute=True):
        record = merchant_action_take(merchant_id=merchant.pk, actor_id=regulator.pk, action=action, reason="x")
    notices = Notification.objects.filter(kind=kind, merchant_id=merchant.pk)
    assert set(notices.values_list("user_id", flat=True)) == {card.consumer.user_id for card in holders}
    job = FanOut.objects.get(event_key=f"{kind}:{record.pk}")
    assert (job.state, job.done, job.total) == ("done", 5, 5)
    client = Client()
    sign_in(client, regulator)
    page = client.get(f"/r/actions/{record.pk}/status/").content.decode()
    assert 'data-testid="notice-progress"' in page and 'value="5"' in page


def test_unflag_tells_nobody(gym, django_capture_on_commit_callbacks):
    merchant, _, _ = gym
    regulator = UserFactory(role="regulator")
    with django_capture_on_commit_callbacks(execute=True):
        merchant_action_take(merchant_id=merchant.pk, actor_id=regulator.pk, action="flag", reason="x")
        merchant_action_take(merchant_id=merchant.pk, actor_id=regulator.pk, action="unflag", reason="x")
    assert FanOut.objects.count() == 1
