"""The regulator's actions: each one's effect on the merchant, its audit row, its refusals, and the
refund order running in the background in chunks, surviving a killed worker, each card once."""

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine

from consumers.models import Card
from core import clock
from escrow.models import Account, JournalEntry
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Merchant
from refunds.models import MassRefund, Refund
from refunds.services import mass_refunds_resume
from regulator.models import AuditEvent, RegulatorAction
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import client_for
from tests.settlement.test_settlement_crash import ROOT, database_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(regulator):
    return client_for(regulator)


@pytest.fixture
def gym():
    m = builders.merchant(name="Iron Gym")
    pack = builders.session_pack(m, price=60_000, sessions=6)
    cards = [builders.paid_card(pack) for _ in range(3)]
    use(cards[0])
    return m, pack, cards


def act(client, merchant, action, reason="hotline reports", **extra):
    return client.post(
        f"/api/v1/regulator/merchants/{merchant.pk}/actions",
        {"action": action, "reason": reason, **extra},
        format="json",
    )


TOGGLES = [
    ("flag", "flagged", True),
    ("freeze_sales", "sales_frozen", True),
    ("freeze_releases", "releases_frozen", True),
]


@pytest.mark.parametrize(("action", "field", "value"), TOGGLES)
def test_an_action_changes_the_merchant_and_writes_who_when_why_and_what_changed(
    staff, regulator, gym, action, field, value
):
    merchant = gym[0]
    response = act(staff, merchant, action, reason="many complaints about closed doors")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["action"], body["state"], body["progress"]) == (action, "done", {"done": 1, "total": 1})
    assert getattr(Merchant.objects.get(pk=merchant.pk), field) is value
    event = AuditEvent.objects.get(verb=action, merchant=merchant)
    assert event.actor == regulator and event.reason == "many complaints about closed doors"
    assert event.changes[field] == [not value, value]
    assert event.target == f"action:{body['id']}"
    assert staff.get(f"/api/v1/regulator/actions/{body['id']}").json()["state"] == "done"


@pytest.mark.parametrize(("action", "undo"), [("flag", "unflag"), ("freeze_sales", "unfreeze_sales")])
def test_repeating_an_action_is_refused_and_its_undo_restores(staff, gym, action, undo):
    merchant = gym[0]
    assert act(staff, merchant, action).status_code == 202
    again = act(staff, merchant, action)
    assert again.status_code == 409 and again.json()["code"] == "action_not_allowed"
    assert act(staff, merchant, undo).status_code == 202
    assert act(staff, merchant, undo).json()["code"] == "action_not_allowed"
    merchant.refresh_from_db()
    assert not (merchant.flagged or merchant.sales_frozen) and merchant.risk_warning is None
    assert AuditEvent.objects.filter(merchant=merchant).count() == 2


def test_a_flag_puts_a_public_warning_on_the_merchants_products(staff, api, gym):
    merchant = gym[0]
    act(staff, merchant, "flag", warning="多名消费者反映该商户已停止营业")
    products = api.get(f"/api/v1/products?merchant={merchant.pk}").json()["results"]
    assert products and all(p["risk_warning"] == "多名消费者反映该商户已停止营业" for p in products)
    act(staff, merchant, "unflag")
    assert api.get(f"/api/v1/products?merchant={merchant.pk}").json()["results"][0]["risk_warning"] is None


def test_frozen_sales_refuse_purchases_and_frozen_releases_refuse_services(staff, gym):
    merchant, pack, cards = gym
    act(staff, merchant, "freeze_sales")
    buyer = client_for(builders.consumer().user)
    response = buyer.post("/api/v1/cards", {"product": str(pack.pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "merchant_sales_frozen"
    act(staff, merchant, "freeze_releases")
    shop = client_for(merchant.user)
    response = shop.post("/api/v1/redemptions", {"card": str(cards[1].pk)}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "merchant_frozen"


def test_bad_actions_are_400_and_unknown_merchants_404(staff, gym):
    merchant = gym[0]
    assert act(staff, merchant, "close_down").json()["code"] == "invalid"
    response = staff.post(f"/api/v1/regulator/merchants/{merchant.pk}/actions", {"action": "flag"}, format="json")
    assert response.status_code == 400 and "reason" in response.json()["errors"]
    response = staff.post("/api/v1/regulator/merchants/nope/actions", {"action": "flag", "reason": "x"}, format="json")
    assert response.status_code == 404
    assert staff.get("/api/v1/regulator/actions/not-an-id").status_code == 404


def test_order_refunds_refunds_every_card_with_escrow_and_reports_progress(
    staff, regulator, gym, django_capture_on_commit_callbacks
):
    merchant, _, cards = gym
    exhausted = builders.paid_card(builders.session_pack(merchant, price=10_000, sessions=1))
    use(exhausted)
    with django_capture_on_commit_callbacks(execute=True):
        response = act(staff, merchant, "order_refunds", reason="the gym has vanished")
    assert response.status_code == 202
    assert (response.json()["state"], response.json()["progress"]) == ("queued", {"done": 0, "total": 3})
    action = staff.get(f"/api/v1/regulator/actions/{response.json()['id']}").json()
    assert (action["state"], action["progress"]) == ("done", {"done": 3, "total": 3})
    refunds = Refund.objects.filter(card__merchant=merchant)
    assert sorted(r.card_id for r in refunds) == sorted(c.pk for c in cards)
    assert {(r.reason, r.fee, r.state) for r in refunds} == {("merchant_closure", 0, "paid")}
    assert refunds.get(card=cards[0]).amount == 50_000  # one of six sessions was used
    merchant.refresh_from_db()
    assert merchant.sales_frozen
    event = AuditEvent.objects.get(verb="order_refunds", merchant=merchant)
    assert event.changes == {"sales_frozen": [False, True], "cards_to_refund": [None, 3]}
    assert MassRefund.objects.get(merchant=merchant).actor == regulator
    assert ledger_ok(ledger_verify())


def test_actions_posted_with_an_idempotency_key_happen_once(staff, gym):
    merchant = gym[0]
    first = staff.post(
        f"/api/v1/regulator/merchants/{merchant.pk}/actions",
        {"action": "order_refunds", "reason": "gone"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="order-1",
    )
    again = staff.post(
        f"/api/v1/regulator/merchants/{merchant.pk}/actions",
        {"action": "order_refunds", "reason": "gone"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="order-1",
    )
    assert again.status_code == first.status_code == 202 and again.json() == first.json()
    assert RegulatorAction.objects.filter(merchant=merchant).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_order_whose_worker_is_killed_mid_way_resumes_and_refunds_each_card_once(regulator):
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=10_000, sessions=2)
    cards = [builders.paid_card(pack) for _ in range(320)]
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_DEBUG": "1",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "FAULT_KILL_AT": "mass_refund.after_chunk",
    }
    script = (
        "from regulator.services.actions import merchant_action_take\n"
        f"merchant_action_take(merchant_id='{gym.pk}', actor_id={regulator.pk},"
        " action='order_refunds', reason='gone')\n"
    )
    from django.db import connection

    connection.close()
    crashed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    action = RegulatorAction.objects.select_related("mass_refund").get(merchant=gym)
    assert action.state == "running" and 0 < action.mass_refund.done < 320  # one chunk in, then the worker died
    # The sweep finds the job idle for minutes and runs it again (inline, as tests run tasks).
    with time_machine.travel(clock.now() + timedelta(minutes=3), tick=False):
        assert mass_refunds_resume() == 1
    action.refresh_from_db()
    action.mass_refund.refresh_from_db()
    assert (action.state, action.mass_refund.done, action.mass_refund.total) == ("done", 320, 320)
    assert Refund.objects.filter(card__merchant=gym).count() == 320
    assert JournalEntry.objects.filter(code="refund").count() == 320
    assert Card.objects.filter(pk__in=[c.pk for c in cards], state="refunded").count() == 320
    assert Account.objects.filter(kind="card_escrow", balance__gt=0).count() == 0
    assert ledger_ok(ledger_verify())


def test_the_same_order_cannot_be_given_twice_while_it_runs(regulator, gym):
    merchant = gym[0]
    now = clock.now()
    job = MassRefund.objects.create(
        merchant=merchant, reason="regulator_order", total=3, created_at=now, updated_at=now
    )
    RegulatorAction.objects.create(
        merchant=merchant, actor=regulator, action="order_refunds", reason="x", mass_refund=job, created_at=now
    )
    from regulator.errors import ActionNotAllowed

    with pytest.raises(ActionNotAllowed):
        merchant_action_take(merchant_id=merchant.pk, actor_id=regulator.pk, action="order_refunds", reason="again")
