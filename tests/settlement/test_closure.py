"""A merchant that closes does so lawfully: notice, sales stop, consumers told, every card refunded once."""

import os
import signal
import subprocess
import sys
from datetime import date

import pytest
import time_machine
from django.core import mail

from consumers.models import Card
from core import clock
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.errors import MerchantSalesFrozen
from merchants.models import Merchant
from merchants.services.closure import NoticeTooShort, closures_due, merchant_closure_announce
from notifications.models import Notification
from refunds.models import MassRefund, Refund
from refunds.services import mass_refund_start, mass_refund_step
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import client_for
from tests.settlement.test_settlement_crash import ROOT, database_url

pytestmark = pytest.mark.django_db


def at(moment):
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def gym_with_customers():
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=100_000, sessions=4)
    with at("2026-03-01 10:00 +0800"):
        cards = [builders.paid_card(pack) for _ in range(4)]
        use(cards[0])
        for _ in range(3):
            use(cards[1])  # three of four sessions used
        for _ in range(1):
            use(cards[1])  # ... and the last: exhausted
    for card in cards[:2]:
        card.consumer.user.email = f"{card.consumer.user.username}@example.com"
        card.consumer.user.save(update_fields=["email"])
    return gym, cards


def test_closing_needs_thirty_days_notice(gym_with_customers):
    gym, _ = gym_with_customers
    with at("2026-03-10 12:00 +0800"), pytest.raises(NoticeTooShort):
        merchant_closure_announce(merchant=gym, closes_on=date(2026, 4, 8), reason="lease ends")
    with at("2026-03-10 12:00 +0800"):
        merchant, _ = merchant_closure_announce(merchant=gym, closes_on=date(2026, 4, 9), reason="lease ends")
    assert merchant.status == Merchant.Status.CLOSING


def test_notice_too_short_over_http_is_400_with_code(gym_with_customers):
    gym, _ = gym_with_customers
    with at("2026-03-10 12:00 +0800"):
        response = client_for(gym.user).post(
            "/api/v1/merchant/closure", {"closes_on": "2026-03-20", "reason": "x"}, format="json"
        )
    assert response.status_code == 400 and response.json()["code"] == "notice_too_short"
    assert "closes_on" in response.json()["errors"]


def test_notice_stops_sales_and_tells_every_consumer_with_escrow(
    gym_with_customers, django_capture_on_commit_callbacks
):
    gym, cards = gym_with_customers
    with at("2026-03-10 12:00 +0800"), django_capture_on_commit_callbacks(execute=True):
        response = client_for(gym.user).post(
            "/api/v1/merchant/closure", {"closes_on": "2026-04-15", "reason": "lease ends"}, format="json"
        )
    assert response.status_code == 201
    assert response.json()["status"] == "closing" and response.json()["consumers_notified"] == 3
    told = set(Notification.objects.filter(kind="merchant_closing").values_list("user_id", flat=True))
    assert told == {cards[0].consumer.user_id, cards[2].consumer.user_id, cards[3].consumer.user_id}  # not exhausted
    assert [m.to for m in mail.outbox] == [[cards[0].consumer.user.email]]
    from consumers.services import card_purchase

    with pytest.raises(MerchantSalesFrozen):
        card_purchase(consumer=builders.consumer(), product_id=cards[0].product_id)


def test_on_the_closing_day_every_card_with_escrow_is_refunded_in_full_once(
    gym_with_customers, django_capture_on_commit_callbacks
):
    gym, cards = gym_with_customers
    with at("2026-03-10 12:00 +0800"):
        merchant_closure_announce(merchant=gym, closes_on=date(2026, 4, 15), reason="lease ends")
    with at("2026-04-14 12:00 +0800"):
        assert closures_due() == 0
    with at("2026-04-15 00:30 +0800"), django_capture_on_commit_callbacks(execute=True):
        assert closures_due() == 1
    job = MassRefund.objects.get()
    assert (job.state, job.total, job.done) == ("done", 3, 3)
    refunds = {r.card_id: (r.reason, r.amount, r.fee, r.state) for r in Refund.objects.all()}
    assert refunds == {
        cards[0].pk: ("merchant_closure", 75_000, 0, "paid"),
        cards[2].pk: ("merchant_closure", 100_000, 0, "paid"),
        cards[3].pk: ("merchant_closure", 100_000, 0, "paid"),
    }
    with at("2026-04-15 01:30 +0800"), django_capture_on_commit_callbacks(execute=True):
        closures_due()
    assert Merchant.objects.get(pk=gym.pk).status == Merchant.Status.CLOSED
    assert Refund.objects.count() == 3
    assert all(builders.invariant_holds(c) for c in cards)
    assert ledger_ok(ledger_verify())


def test_a_mass_refund_refunds_in_chunks_and_reports_progress():
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=10_000, sessions=2)
    cards = [builders.paid_card(pack) for _ in range(7)]
    job = mass_refund_start(merchant_id=gym.pk, reason="merchant_closure")  # no commit: runs by hand
    progress = []
    while mass_refund_step(job_id=job.pk, chunk=3):
        progress.append(MassRefund.objects.get(pk=job.pk).done)
    assert progress == [3, 6, 7]
    assert MassRefund.objects.get(pk=job.pk).state == "done"
    assert Card.objects.filter(pk__in=[c.pk for c in cards], state="refunded").count() == 7


@pytest.mark.django_db(transaction=True)
def test_a_mass_refund_killed_mid_way_resumes_and_refunds_each_card_once():
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=10_000, sessions=2)
    for _ in range(300):
        builders.paid_card(pack)
    # The job as mass_refund_start writes it, without queueing its first chunk on this process.
    now = clock.now()
    job = MassRefund.objects.create(merchant=gym, reason="merchant_closure", total=300, created_at=now, updated_at=now)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_DEBUG": "1",
        "FAULT_KILL_AT": "mass_refund.after_chunk",
    }
    script = f"from refunds.services import mass_refund_step\nmass_refund_step(job_id={job.pk}, chunk=120)\n"
    from django.db import connection

    connection.close()
    crashed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert MassRefund.objects.get(pk=job.pk).done == 120  # the first chunk committed, then the worker died
    while mass_refund_step(job_id=job.pk, chunk=120):
        pass
    job = MassRefund.objects.get(pk=job.pk)
    assert (job.state, job.done, job.total) == ("done", 300, 300)
    assert Refund.objects.count() == 300
    assert JournalEntry.objects.filter(code="refund").count() == 300
    assert Account.objects.filter(kind="card_escrow", balance__gt=0).count() == 0
    assert ledger_ok(ledger_verify())
