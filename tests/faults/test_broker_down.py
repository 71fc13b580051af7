"""The Redis broker stopped under a running platform (gunicorn, a Celery worker, beat): purchases,
payments, confirmations and refunds still succeed at once, the refunds' payments wait in the outbox,
and once Redis is back the worker and beat reconnect and the outbox drains, each refund paid once.

The Redis is the test's own (a ``redis-server`` subprocess on a free port), killed with SIGKILL and
started again on the same port; the machine's shared Redis is never touched."""

from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import pytest
from rest_framework.authtoken.models import Token

from consumers.models import Card
from core.models import OutboxMessage
from escrow.selectors import ledger_ok, ledger_verify
from refunds.models import Refund
from refunds.services import REFUND_TOPIC
from tests.cards import builders
from tests.factories import UserFactory
from tests.faults.support import (
    PrivateRedis,
    Proc,
    call,
    card_bought_and_paid,
    service_confirmed,
    service_env,
    start_gunicorn,
    start_worker,
    wait_until,
)
from tests.settlement.test_mass_refund_payments import assert_each_refund_paid_once
from tests.settlement.test_settlement_crash import database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SWEEP_SECONDS = 1.0  # beat's outbox sweep runs every minute; here every second, to keep the test short
REQUEST_SECONDS = 5.0  # a request that waits on a dead broker longer than this is a hang

# ``celery -A config beat`` with only the outbox sweep on its schedule.
BEAT_MAIN = """
import sys
from config.celery import app
app.conf.beat_schedule = {"outbox-sweep": {"task": "core.tasks.outbox_sweep_task", "schedule": float(sys.argv[1])}}
app.start(["beat", "-s", sys.argv[2], "-l", "INFO"])
"""


@pytest.fixture
def platform(tmp_path):
    redis = PrivateRedis(workdir=tmp_path)
    redis.start()
    env = service_env(database_url=database_url(), broker_url=redis.url)
    started: list[Proc] = []
    try:
        worker = start_worker(env=env, log=tmp_path / "worker.log")
        started.append(worker)
        beat = Proc.spawn(
            [sys.executable, "-c", BEAT_MAIN, str(SWEEP_SECONDS), str(tmp_path / "beat-schedule")],
            env=env, log=tmp_path / "beat.log",
        )  # fmt: skip
        started.append(beat)
        server, port = start_gunicorn(env=env, log=tmp_path / "gunicorn.log")
        started.append(server)
        yield SimpleNamespace(redis=redis, worker=worker, beat=beat, server=server, port=port)
    finally:
        for proc in reversed(started):
            proc.stop()
        redis.kill()


def token(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def timed(step):
    """Run ``step`` (returning answers) and return them with the slowest request's seconds."""
    started = time.monotonic()
    answers = step()
    return answers, time.monotonic() - started


def test_with_the_broker_down_requests_succeed_and_the_outbox_drains_once_it_is_back(platform):
    gym = builders.merchant()
    product = str(builders.session_pack(gym, price=30_000, sessions=3, refund_fee_bps=500).pk)
    shop = token(gym.user)
    consumers = [token(builders.consumer().user) for _ in range(4)]
    port = platform.port
    cards: list[str] = []

    def card_with_one_service(consumer: str, key: str) -> str:
        answers, seconds = timed(lambda: card_bought_and_paid(port, consumer=consumer, product=product, key=key))
        assert [a.status for a in answers] == [201, 200], answers
        assert seconds < 2 * REQUEST_SECONDS, seconds
        card = answers[0].body["id"]
        answers, seconds = timed(lambda: service_confirmed(port, consumer=consumer, merchant=shop, card=card, key=key))
        assert [a.status for a in answers] == [201, 200], answers
        assert seconds < 2 * REQUEST_SECONDS, seconds
        cards.append(card)
        return card

    def refund(consumer: str, card: str, reason: str) -> str:
        answer, seconds = timed(
            lambda: call(
                port, "POST", f"/api/v1/cards/{card}/refunds", token=consumer, body={"reason": reason}, key=f"r-{card}"
            )
        )
        assert answer.status == 201, answer
        assert seconds < REQUEST_SECONDS, f"the refund took {seconds:.1f}s with the broker down"
        return answer.body["id"]

    # With the broker up, a refund is paid by the worker within moments: the pipeline works.
    first = refund(consumers[0], card_with_one_service(consumers[0], "0"), "voluntary")
    wait_until(
        lambda: Refund.objects.filter(pk=first, state="paid").exists(),
        timeout=30,
        message=lambda: f"the first refund was not paid:\n{platform.worker.tail()}",
    )

    platform.redis.kill()
    refunds = []
    for n, consumer in enumerate(consumers[1:], start=1):
        refunds.append(refund(consumer, card_with_one_service(consumer, str(n)), "voluntary"))
        bought, seconds = timed(
            lambda c=consumer, n=n: card_bought_and_paid(port, consumer=c, product=product, key=f"{n}b")
        )
        assert [a.status for a in bought] == [201, 200], bought
        assert seconds < 2 * REQUEST_SECONDS, seconds
        cards.append(bought[0].body["id"])
        refunds.append(refund(consumer, bought[0].body["id"], "cooling_off"))

    # Work with no outbox row to wait in cannot be accepted: a clean 503, not a 500 and not a hang.
    regulator = token(UserFactory(role="regulator"))
    answer, seconds = timed(lambda: call(port, "POST", "/api/v1/regulator/risk/compute", token=regulator))
    assert (answer.status, answer.code()) == (503, "service_unavailable"), answer
    assert seconds < REQUEST_SECONDS, seconds

    # Everything is booked; the payments wait in the outbox for the broker.
    waiting = OutboxMessage.objects.filter(topic=REFUND_TOPIC, payload__refund_id__in=refunds)
    assert waiting.count() == len(refunds)
    assert "broker unavailable" in platform.server.tail(1_000_000)  # the kicks failed, and said so
    time.sleep(3 * SWEEP_SECONDS)
    assert set(waiting.values_list("state", flat=True)) == {"pending"}
    assert set(Refund.objects.filter(pk__in=refunds).values_list("state", flat=True)) == {"pending"}
    for proc in (platform.worker, platform.beat, platform.server):
        assert proc.process.poll() is None, f"died with the broker:\n{proc.tail()}"

    platform.redis.start()  # the same port: worker and beat reconnect, beat's sweep finds the messages
    wait_until(
        lambda: not Refund.objects.filter(pk__in=[first, *refunds]).exclude(state="paid").exists(),
        timeout=60,
        message=lambda: (
            f"unpaid: {Refund.objects.exclude(state='paid').count()}\nworker:\n{platform.worker.tail()}"
            f"\nbeat:\n{platform.beat.tail()}"
        ),
    )

    assert_each_refund_paid_once(Card.objects.filter(pk__in=cards))
    for card in cards:
        body = call(port, "GET", f"/api/v1/cards/{card}", token=shop).body
        assert body["state"] == "refunded" and body["escrow_balance"] == 0
        assert body["price"] == body["escrow_balance"] + body["released_total"] + body["refunded_total"]
    assert set(waiting.values_list("state", flat=True)) == {"sent"}
    assert "Traceback" not in platform.server.tail(1_000_000)
    assert ledger_ok(ledger_verify())
