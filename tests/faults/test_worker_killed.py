"""A real Celery worker (``celery -A config worker``, prefork pool) SIGKILLed with its whole process
group in the middle of the daily settlement and in the middle of a mass refund with its payments,
then started again: everything completes and nothing happens twice.

The tests in ``tests/settlement/test_settlement_crash.py``, ``tests/regulator/test_actions.py`` and
``tests/settlement/test_mass_refund_payments.py`` kill a ``manage.py`` process at fault points;
here the process killed is the worker itself, at whatever moment the work has reached, with its
task messages on a real broker (a Redis of the test's own) that loses the task in hand."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest
import time_machine
from django.db.models import F

from core import clock
from core.models import OutboxMessage
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Merchant, Settlement, SettlementRun
from payments.models import BankTransaction
from refunds.models import MassRefund, Refund
from refunds.services import MASS_REFUND_CHUNK
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import ROOT
from tests.factories import UserFactory
from tests.faults.support import PrivateRedis, send_task, service_env, start_worker, wait_until
from tests.settlement.test_mass_refund_payments import assert_each_refund_paid_once
from tests.settlement.test_settlement_crash import database_url

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Four chunks of settlements paid (SETTLEMENT_CHUNK below), in one lane or two of two (the
# settlement's lanes, SETTLEMENT_WORKERS): the kill lands after the first commits, others to come.
MERCHANTS = 160
SETTLEMENT_CHUNK = "40"
CARDS = MASS_REFUND_CHUNK + 40  # two chunks: the kill lands after the first


@pytest.fixture
def redis(tmp_path):
    server = PrivateRedis(workdir=tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def workers(redis, tmp_path):
    """Start workers on the test database and the private broker; all are stopped at the end."""
    started = []

    def start(name: str):
        env = service_env(database_url=database_url(), broker_url=redis.url, SETTLEMENT_CHUNK=SETTLEMENT_CHUNK)
        worker = start_worker(env=env, log=tmp_path / f"{name}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def kill_when(worker, condition, *, what: str) -> None:
    """SIGKILL the worker's process group the moment ``condition`` holds (polled every few ms)."""
    deadline = time.monotonic() + 120
    while not condition():
        assert worker.process.poll() is None, f"the worker died on its own:\n{worker.tail()}"
        assert time.monotonic() < deadline, f"never reached {what}:\n{worker.tail()}"
        time.sleep(0.005)
    worker.kill()


def merchants_with_releases_on(day) -> list:
    """``MERCHANTS`` merchants, each released 10,000 fen on ``day`` by a confirmed service."""
    with time_machine.travel(clock.local_midnight(day) + timedelta(hours=10), tick=False):
        merchants = []
        for _ in range(MERCHANTS):
            merchant = builders.merchant()
            use(builders.paid_card(builders.session_pack(merchant, price=30_000, sessions=3)))
            merchants.append(merchant)
    return merchants


def test_settlement_whose_worker_is_killed_mid_way_pays_each_merchant_once_after_a_restart(redis, workers):
    yesterday = clock.local_date() - timedelta(days=1)
    merchants = merchants_with_releases_on(yesterday)
    settlements = Settlement.objects.filter(date=yesterday)
    paid = settlements.filter(payout_state="paid")

    first = workers("worker-1")
    send_task(redis.url, "merchants.tasks.settlement_daily_task")  # what beat sends at 02:00
    kill_when(first, lambda: paid.exists(), what="the first paid payout")

    paid_at_kill = paid.count()
    # With the local bank a chunk's settlements are written paid, together: the worker died
    # between two chunks, with merchants left to settle and pay.
    assert settlements.count() == paid_at_kill
    assert 0 < paid_at_kill < MERCHANTS, paid_at_kill
    assert JournalEntry.objects.filter(code="payout").count() == paid_at_kill
    assert BankTransaction.objects.filter(kind="payout").count() == paid_at_kill

    second = workers("worker-2")
    # The task in hand died with the worker. What comes next, in any order and more than once: the
    # payout batches still queued, the outbox sweep (beat, every minute), and the daily task run
    # again (the broker's redelivery of the unacknowledged message, or an operator).
    send_task(redis.url, "core.tasks.outbox_sweep_task")
    send_task(redis.url, "merchants.tasks.settlement_daily_task")
    send_task(redis.url, "core.tasks.outbox_sweep_task")
    wait_until(
        lambda: paid.count() == MERCHANTS and redis.queued() == 0,
        timeout=90,
        message=lambda: f"{paid.count()} of {MERCHANTS} paid; worker:\n{second.tail()}",
    )
    time.sleep(0.5)  # the last task taken from the queue finishes
    second.stop()

    assert SettlementRun.objects.filter(date=yesterday, state="done").count() == 1
    assert SettlementRun.objects.count() == 1
    for merchant in merchants:
        (settlement,) = settlements.filter(merchant=merchant)
        assert (settlement.released, settlement.payout_amount, settlement.payout_state) == (10_000, 10_000, "paid")
        assert Account.objects.get(pk=merchant.settlement_account_id).balance == 0
    assert JournalEntry.objects.filter(code="payout").count() == MERCHANTS
    assert BankTransaction.objects.filter(kind="payout").count() == MERCHANTS
    # With the local bank a chunk is paid with its settlements: no payout waits in the outbox.
    assert not OutboxMessage.objects.filter(topic="payout.send").exclude(state="sent").exists()
    assert ledger_ok(ledger_verify())


def test_mass_refund_whose_worker_is_killed_mid_way_refunds_and_pays_each_card_once_after_a_restart(redis, workers):
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=10_000, sessions=2)
    cards = [builders.paid_card(pack) for _ in range(CARDS)]
    now = clock.now()
    job = MassRefund.objects.create(
        merchant=gym, reason="merchant_closure", total=CARDS, created_at=now, updated_at=now
    )
    refunds = Refund.objects.filter(card__merchant=gym)

    first = workers("worker-1")
    send_task(redis.url, "refunds.tasks.mass_refund_step_task", job.pk)  # what mass_refund_start queues
    kill_when(first, lambda: MassRefund.objects.filter(pk=job.pk, done__gt=0).exists(), what="the first chunk")

    job.refresh_from_db()
    assert 0 < job.done < CARDS and job.state == "running", (job.done, job.state)
    assert refunds.count() == job.done
    assert refunds.filter(state="paid").count() < CARDS

    second = workers("worker-2")
    # The sweeps of beat: a job idle for two minutes is resumed (the minutes are made to have passed
    # by moving its last progress back) and due outbox messages are delivered. If the job's next
    # chunk is still queued, the resumed step races it; each card must still be refunded once.
    MassRefund.objects.filter(pk=job.pk).update(updated_at=F("updated_at") - timedelta(minutes=3))
    send_task(redis.url, "refunds.tasks.mass_refunds_resume_task")
    wait_until(
        lambda: MassRefund.objects.filter(pk=job.pk, state="done").exists(),
        timeout=90,
        message=lambda: f"job {MassRefund.objects.values_list('state', 'done').get(pk=job.pk)}:\n{second.tail()}",
    )
    send_task(redis.url, "core.tasks.outbox_sweep_task")
    wait_until(
        lambda: refunds.filter(state="paid").count() == CARDS and redis.queued() == 0,
        timeout=90,
        message=lambda: f"{refunds.filter(state='paid').count()} of {CARDS} paid:\n{second.tail()}",
    )
    time.sleep(0.5)
    second.stop()

    job.refresh_from_db()
    assert (job.state, job.done, job.total) == ("done", CARDS, CARDS)
    assert JournalEntry.objects.filter(code="refund").count() == CARDS
    for card in cards:
        card = builders.fresh(card)
        assert (card.state, card.refunded_total, card.escrow_account.balance) == ("refunded", 10_000, 0)
        assert builders.invariant_holds(card)
    assert_each_refund_paid_once(cards)  # one refund, one bank row, one refund_paid entry per card
    assert ledger_ok(ledger_verify())


def test_payouts_held_while_releases_are_frozen_are_paid_once_after_the_unfreeze_whatever_worker_dies(redis, workers):
    """The regulator froze every merchant's releases: the worker settles the day and holds each
    payout, and is killed after the first hold; the unfreeze (a regulator in another process)
    sends the held payouts again, and that worker is killed after the first of them is paid. In
    the end each merchant is paid its settlement once, and not a fen earlier than the unfreeze."""
    yesterday = clock.local_date() - timedelta(days=1)
    merchants = merchants_with_releases_on(yesterday)
    regulator = UserFactory(role="regulator")
    Merchant.objects.filter(pk__in=[m.pk for m in merchants]).update(releases_frozen=True)
    settlements = Settlement.objects.filter(date=yesterday)
    held, paid = settlements.filter(payout_state="held"), settlements.filter(payout_state="paid")

    first = workers("worker-1")
    send_task(redis.url, "merchants.tasks.settlement_daily_task")
    kill_when(first, lambda: held.exists(), what="the first held payout")
    assert 0 < held.count() < MERCHANTS, held.count()

    second = workers("worker-2")
    send_task(redis.url, "core.tasks.outbox_sweep_task")
    send_task(redis.url, "merchants.tasks.settlement_daily_task")
    wait_until(
        lambda: held.count() == MERCHANTS and redis.queued() == 0,
        timeout=90,
        message=lambda: f"{held.count()} of {MERCHANTS} held; worker:\n{second.tail()}",
    )
    assert not paid.exists()
    assert not JournalEntry.objects.filter(code="payout").exists()
    assert not BankTransaction.objects.filter(kind="payout").exists()

    # The regulator unfreezes every merchant from another process (as the web server would): each
    # unfreeze queues its held payout on the broker, and the worker is killed mid-way through them.
    unfreeze = (
        "from merchants.models import Merchant\n"
        "from regulator.services.actions import merchant_action_take\n"
        f"for pk in Merchant.objects.filter(releases_frozen=True).order_by('pk').values_list('pk', flat=True):\n"
        f"    merchant_action_take(merchant_id=pk, actor_id={regulator.pk}, action='unfreeze_releases',\n"
        "                         reason='cleared')\n"
    )
    env = service_env(database_url=database_url(), broker_url=redis.url)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", unfreeze],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    kill_when(second, lambda: paid.exists(), what="the first payout after the unfreeze")
    assert paid.count() < MERCHANTS

    third = workers("worker-3")
    send_task(redis.url, "core.tasks.outbox_sweep_task")
    send_task(redis.url, "merchants.tasks.settlement_daily_task")
    send_task(redis.url, "core.tasks.outbox_sweep_task")
    wait_until(
        lambda: paid.count() == MERCHANTS and redis.queued() == 0,
        timeout=90,
        message=lambda: f"{paid.count()} of {MERCHANTS} paid; worker:\n{third.tail()}",
    )
    time.sleep(0.5)
    third.stop()

    for merchant in merchants:
        (settlement,) = settlements.filter(merchant=merchant)
        assert (settlement.payout_amount, settlement.payout_state, settlement.held_reason) == (10_000, "paid", "")
        assert Account.objects.get(pk=merchant.settlement_account_id).balance == 0
    assert JournalEntry.objects.filter(code="payout").count() == MERCHANTS
    assert BankTransaction.objects.filter(kind="payout").count() == MERCHANTS
    assert ledger_ok(ledger_verify())
