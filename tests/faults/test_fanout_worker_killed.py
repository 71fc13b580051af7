"""A real Celery worker SIGKILLed in the middle of a fan-out (every holder of a merchant's cards told
of a regulator's flag), then the sweep resumes the job on a new worker: every holder gets exactly one
notice, and one SMS message.

The first worker runs with ``FAULT_KILL_AT=fanout.after_chunk``: its pool process is SIGKILLed right
after the first chunk committed, before the next chunk was queued; the test then SIGKILLs the whole
worker group, as a lost machine would, with the job ``running`` and most holders not yet told."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db.models import Count, F

from core import clock
from core.models import OutboxMessage
from notifications.models import FanOut, Notification
from tests.cards import builders
from tests.faults.support import PrivateRedis, send_task, service_env, start_worker, wait_until
from tests.faults.test_worker_killed import kill_when
from tests.settlement.test_settlement_crash import database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HOLDERS = 70
CHUNK = 20


@pytest.fixture
def redis(tmp_path):
    server = PrivateRedis(workdir=tmp_path)
    server.start()
    yield server
    server.kill()


def test_fanout_whose_worker_is_killed_mid_way_tells_each_holder_once_after_the_sweep(redis, tmp_path):
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=10_000, sessions=2)
    cards = [builders.paid_card(pack) for _ in range(HOLDERS)]
    now = clock.now()
    job = FanOut.objects.create(  # what fanout_start records; the test queues its first chunk itself
        kind="merchant_flagged",
        event_key=f"merchant_flagged:faults:{gym.pk}",
        params={"merchant": gym.name},
        about_money=True,
        merchant_id=gym.pk,
        audience="card_holders",
        audience_arg=str(gym.pk),
        total=HOLDERS,
        created_at=now,
        updated_at=now,
    )
    notices = Notification.objects.filter(event_key=job.event_key)
    assert not notices.exists()

    env = service_env(database_url=database_url(), broker_url=redis.url)
    env["FAULT_KILL_AT"] = "fanout.after_chunk"
    first = start_worker(env=env, log=tmp_path / "worker-1.log")
    send_task(redis.url, "notifications.tasks.fanout_step_task", job.pk, CHUNK)
    kill_when(first, lambda: FanOut.objects.filter(pk=job.pk, done__gt=0).exists(), what="the first chunk")

    job.refresh_from_db()
    assert (job.state, job.done) == ("running", CHUNK), (job.state, job.done)
    assert notices.count() == CHUNK

    second = start_worker(
        env=service_env(database_url=database_url(), broker_url=redis.url), log=tmp_path / "worker-2.log"
    )
    try:
        # beat's sweep finds the job idle for two minutes (made so by moving its last progress back)
        FanOut.objects.filter(pk=job.pk).update(updated_at=F("updated_at") - timedelta(minutes=3))
        send_task(redis.url, "notifications.tasks.fanouts_resume_task")
        send_task(redis.url, "notifications.tasks.fanouts_resume_task")  # and again: a racing resume
        wait_until(
            lambda: FanOut.objects.filter(pk=job.pk, state="done").exists(),
            timeout=90,
            message=lambda: f"{FanOut.objects.values_list('state', 'done').get(pk=job.pk)}:\n{second.tail()}",
        )
        time.sleep(0.5)
    finally:
        second.stop()

    job.refresh_from_db()
    assert (job.state, job.done, job.total) == ("done", HOLDERS, HOLDERS)
    per_user = notices.values("user_id").annotate(n=Count("pk"))
    assert sorted(row["user_id"] for row in per_user) == sorted(card.consumer.user_id for card in cards)
    assert {row["n"] for row in per_user} == {1}
    keys = [f"notify:{pk}:sms" for pk in notices.values_list("pk", flat=True)]
    assert OutboxMessage.objects.filter(idempotency_key__in=keys).count() == HOLDERS
