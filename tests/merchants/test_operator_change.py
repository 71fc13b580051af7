"""A change of operator: asked for with the profile's notice, approved (or rejected) by the regulator,
every holder asked once; on its day each card whose holder did not consent is refunded in full once
(merchant_default), resumably, the consenting cards continue, and no fen moves for them."""

import os
import signal
import subprocess
import sys
from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client

from consumers.models import Card, OperatorConsent
from core import clock
from core.rules import rule
from escrow.models import Account, JournalEntry, Posting
from escrow.selectors import ledger_ok, ledger_verify
from merchants.models import Merchant, OperatorChange, Settlement
from merchants.selectors import merchant_particulars_on
from merchants.services.operator_change import operator_change_request, operator_changes_due
from merchants.services.settlement import settlement_run
from notifications.models import Notification
from refunds.models import MassRefund, Refund
from refunds.services import mass_refunds_resume
from regulator.models import AuditEvent
from regulator.selectors.jurisdiction import Jurisdiction
from regulator.services.operator_changes import regulator_operator_change_approve
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import client_for
from tests.factories import UserFactory, sign_in
from tests.settlement.test_settlement_crash import ROOT, database_url

pytestmark = pytest.mark.django_db

ASKED = "2026-03-10 12:00 +0800"
CHANGES_ON = date(2026, 4, 20)
NEW_LICENCE = builders.license_number(777_001)


def at(moment):
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def regulator():
    return UserFactory(role="regulator")


@pytest.fixture
def salon():
    """A salon with five cards of four holders (one holds two), one of them used up."""
    salon = builders.merchant(category="beauty", name="美丽时光")
    pack = builders.session_pack(salon, price=100_000, sessions=4)
    with at("2026-03-01 10:00 +0800"):
        regular = builders.consumer()
        cards = [builders.paid_card(pack, regular), builders.paid_card(pack, regular)]
        cards += [builders.paid_card(pack) for _ in range(3)]
        use(cards[2])
        for _ in range(4):
            use(cards[4])  # used up
    return salon, [builders.fresh(card) for card in cards]


def ask(salon, **changes):
    values = {
        "new_operator_name": "丽人美容有限公司",
        "new_license_number": NEW_LICENCE,
        "changes_on": CHANGES_ON,
        "reason": "店铺转让",
        **changes,
    }
    return client_for(salon.user).post("/api/v1/merchant/operator-change", values, format="json")


def approve(change_id, regulator, note="materials complete"):
    return client_for(regulator).post(
        f"/api/v1/regulator/operator-changes/{change_id}/approve", {"note": note}, format="json"
    )


def consent(card, answer: bool):
    return client_for(card.consumer.user).post(
        f"/api/v1/cards/{card.pk}/operator-consent", {"consent": answer}, format="json"
    )


@pytest.fixture
def approved(salon, regulator, django_capture_on_commit_callbacks):
    """The salon's change asked for and approved, holders told."""
    shop, cards = salon
    with at(ASKED):
        change_id = ask(shop).json()["id"]
        with django_capture_on_commit_callbacks(execute=True):
            assert approve(change_id, regulator).status_code == 200
    return shop, cards, OperatorChange.objects.get(pk=change_id)


def test_a_change_sooner_than_the_profiles_notice_is_400_notice_too_short_with_rule_and_basis(salon):
    shop, _cards = salon
    with at(ASKED):
        response = ask(shop, changes_on="2026-04-08")
    body = response.json()
    assert response.status_code == 400 and body["code"] == "notice_too_short"
    assert body["rule"] == "operator_change_notice_days"
    assert body["basis"] == rule("operator_change_notice_days").basis_zh and "changes_on" in body["errors"]
    with at(ASKED):
        bad_licence = ask(shop, new_license_number="91110000000000000X")
        own_licence = ask(shop, new_license_number=shop.license_number)
    assert bad_licence.json()["code"] == "invalid_license_number"
    assert (own_licence.status_code, list(own_licence.json()["errors"])) == (400, ["new_license_number"])
    assert not OperatorChange.objects.exists()


def test_one_change_at_a_time_and_its_licence_is_nobody_elses(salon):
    shop, _cards = salon
    with at(ASKED):
        first = ask(shop)
        second = ask(shop, new_license_number=builders.license_number(777_002))
        other = builders.merchant()
        taken = ask(other)
    assert first.status_code == 201 and first.json()["state"] == "requested"
    assert (second.status_code, second.json()["code"]) == (409, "operator_change_pending")
    assert (taken.status_code, list(taken.json()["errors"])) == (400, ["new_license_number"])
    body = {"username": "late", "password": builders.PASSWORD, "name": "x", "license_number": NEW_LICENCE}
    body |= {"category": "fitness", "district": "朝阳区", "address": "1 Road"}
    signup = Client().post("/api/v1/merchants", body, content_type="application/json")
    assert signup.status_code == 400 and "license_number" in signup.json()["errors"]


def test_approval_asks_every_holder_with_escrow_once_and_is_in_the_audit_log(approved, regulator):
    shop, cards, change = approved
    assert change.state == "approved" and change.consumers_notified == 3
    told = list(Notification.objects.filter(kind="merchant_operator_changing").values_list("user_id", flat=True))
    assert sorted(told) == sorted({cards[0].consumer.user_id, cards[2].consumer.user_id, cards[3].consumer.user_id})
    assert Merchant.objects.get(pk=shop.pk).operator_changes_on == CHANGES_ON
    event = AuditEvent.objects.get(verb="operator_change_approve")
    assert event.actor_id == regulator.pk and event.changes["operator"] == ["美丽时光", "丽人美容有限公司"]
    with at(ASKED):
        again = approve(change.pk, regulator)
        reject = client_for(regulator).post(
            f"/api/v1/regulator/operator-changes/{change.pk}/reject", {"note": "no"}, format="json"
        )
    assert again.json()["code"] == reject.json()["code"] == "operator_change_not_requested"


def test_the_regulator_rejects_with_a_note_and_nothing_changes(salon, regulator):
    shop, _cards = salon
    with at(ASKED):
        change_id = ask(shop).json()["id"]
        no_note = client_for(regulator).post(
            f"/api/v1/regulator/operator-changes/{change_id}/reject", {}, format="json"
        )
        rejected = client_for(regulator).post(
            f"/api/v1/regulator/operator-changes/{change_id}/reject", {"note": "材料不全"}, format="json"
        )
    assert no_note.status_code == 400
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    assert rejected.json()["regulator_note"] == "材料不全"
    assert Merchant.objects.get(pk=shop.pk).operator_changes_on is None
    assert not Notification.objects.filter(kind="merchant_operator_changing").exists()
    with at(ASKED):
        assert ask(shop).status_code == 201  # a rejected change leaves room for a new one


def test_a_change_whose_day_came_before_approval_cannot_be_approved(salon, regulator):
    shop, _cards = salon
    with at(ASKED):
        change_id = ask(shop).json()["id"]
    with at("2026-04-20 09:00 +0800"):
        late = approve(change_id, regulator)
    assert (late.status_code, late.json()["code"]) == (409, "operator_change_too_late")


def test_a_change_outside_the_regulators_jurisdiction_is_not_found(salon, regulator, monkeypatch):
    shop, _cards = salon
    with at(ASKED):
        change_id = ask(shop).json()["id"]
    elsewhere = Jurisdiction(districts=("110101",))  # 东城区; the salon is in 朝阳区
    monkeypatch.setattr("regulator.services.operator_changes.jurisdiction_of", lambda user: elsewhere)
    monkeypatch.setattr("regulator.api.operator_changes.jurisdiction_of", lambda user: elsewhere)
    with at(ASKED):
        approval = approve(change_id, regulator)
        detail = client_for(regulator).get(f"/api/v1/regulator/operator-changes/{change_id}")
        listed = client_for(regulator).get("/api/v1/regulator/operator-changes")
    assert approval.status_code == detail.status_code == 404
    assert listed.json()["count"] == 0
    assert OperatorChange.objects.get(pk=change_id).state == "requested"


def test_the_regulator_asks_on_a_merchants_behalf(salon, regulator):
    shop, _cards = salon
    with at(ASKED):
        response = client_for(regulator).post(
            f"/api/v1/regulator/merchants/{shop.pk}/operator-change",
            {"new_operator_name": "丽人美容有限公司", "new_license_number": NEW_LICENCE, "changes_on": "2026-04-20"},
            format="json",
        )
    assert response.status_code == 201 and response.json()["state"] == "requested"
    change = OperatorChange.objects.get()
    assert change.requested_by == regulator
    assert AuditEvent.objects.filter(verb="operator_change_request", merchant_id=shop.pk).count() == 1


def test_holders_answer_until_the_day_each_for_their_own_cards(approved):
    _shop, cards, change = approved
    with at("2026-04-01 10:00 +0800"):
        assert consent(cards[0], True).json()["consent"] is True
        assert consent(cards[0], False).json()["consent"] is False  # a change of mind replaces the answer
        assert consent(cards[0], True).status_code == 200
        other = client_for(cards[3].consumer.user).post(
            f"/api/v1/cards/{cards[0].pk}/operator-consent", {"consent": True}, format="json"
        )
        used_up = consent(cards[4], True)
    assert other.status_code == 404
    assert (used_up.status_code, used_up.json()["code"]) == (409, "operator_consent_not_open")
    assert OperatorConsent.objects.get(card=cards[0], operator_change=change).consent is True
    with at("2026-04-20 00:00 +0800"):
        closed = consent(cards[1], True)
    assert (closed.status_code, closed.json()["code"]) == (409, "operator_consent_not_open")


def test_on_the_day_every_card_without_consent_is_refunded_once_and_the_rest_continue(
    approved, django_capture_on_commit_callbacks
):
    shop, cards, change = approved
    with at("2026-04-01 10:00 +0800"):
        consent(cards[0], True)  # continues
        consent(cards[2], False)  # refused: refunded
        # cards[1] (the regular's second card) and cards[3] never answered: refunded
    with at("2026-04-20 10:00 +0800"):
        late_buyer = builders.paid_card(cards[0].product)  # bought from the new operator: continues
    escrow_before = {card.pk: Account.objects.get(pk=card.escrow_account_id).balance for card in (cards[0], late_buyer)}
    postings_before = Posting.objects.count()
    with at("2026-04-19 23:30 +0800"):
        assert operator_changes_due() == 0
    with at("2026-04-20 00:25 +0800"):
        with django_capture_on_commit_callbacks(execute=True):
            assert operator_changes_due() == 1  # starts the refunds (run inline here once it commits)
        assert operator_changes_due() == 1  # none left: completes the change
        assert operator_changes_due() == 0
    refunds = {r.card_id: (r.reason, r.amount, r.fee) for r in Refund.objects.all()}
    assert refunds == {
        cards[1].pk: ("merchant_default", 100_000, 0),
        cards[2].pk: ("merchant_default", 75_000, 0),
        cards[3].pk: ("merchant_default", 100_000, 0),
    }
    job = MassRefund.objects.get()
    assert (job.reason, job.operator_change_id, job.state, job.done, job.total) == (
        "operator_change", change.pk, "done", 3, 3,
    )  # fmt: skip
    # Each refunded card: one refund entry (and, the sandbox having paid it, one refund_paid entry).
    assert JournalEntry.objects.filter(code="refund").count() == 3
    assert JournalEntry.objects.filter(code="refund_paid").count() == 3
    assert Posting.objects.count() == postings_before + 3 * 2 * 2
    # The consenting cards' money did not move: same escrow balance, no new posting on their accounts.
    for card in (cards[0], late_buyer):
        assert Account.objects.get(pk=card.escrow_account_id).balance == escrow_before[card.pk]
        assert Card.objects.get(pk=card.pk).state in Card.HOLDING
    change.refresh_from_db()
    assert change.state == "completed" and change.old_operator_name == "美丽时光"
    shop = Merchant.objects.get(pk=shop.pk)
    assert (shop.name, shop.license_number, shop.operator_changes_on) == ("丽人美容有限公司", NEW_LICENCE, None)
    assert all(builders.invariant_holds(card) for card in cards)
    assert ledger_ok(ledger_verify())


def test_a_holder_who_did_not_consent_may_take_the_refund_on_the_day_before_the_job_and_a_consenting_one_not(
    approved, django_capture_on_commit_callbacks
):
    _shop, cards, _change = approved
    with at("2026-04-01 10:00 +0800"):
        consent(cards[0], True)
    with at("2026-04-20 00:05 +0800"):
        own = client_for(cards[3].consumer.user).post(
            f"/api/v1/cards/{cards[3].pk}/refunds", {"reason": "merchant_default"}, format="json"
        )
        kept = client_for(cards[0].consumer.user).post(
            f"/api/v1/cards/{cards[0].pk}/refunds", {"reason": "merchant_default"}, format="json"
        )
        with django_capture_on_commit_callbacks(execute=True):
            operator_changes_due()
        operator_changes_due()
    assert own.status_code == 201 and own.json()["reason"] == "merchant_default"
    assert (kept.status_code, kept.json()["code"]) == (409, "merchant_not_in_default")
    assert Refund.objects.filter(card=cards[3]).count() == 1  # the job did not refund it again
    assert Refund.objects.count() == 3  # cards[1], [2], [3]
    assert ledger_ok(ledger_verify())


def test_settlement_and_statements_attribute_each_day_to_its_operator(approved, django_capture_on_commit_callbacks):
    shop, cards, _change = approved
    with at("2026-04-01 10:00 +0800"):
        consent(cards[0], True)
    with at("2026-04-19 15:00 +0800"):
        use(cards[0])  # the old operator's service
    with at("2026-04-20 00:25 +0800"):
        with django_capture_on_commit_callbacks(execute=True):
            operator_changes_due()
        operator_changes_due()
    with at("2026-04-20 15:00 +0800"):
        use(cards[0])  # the new operator's service, on the card that continued
    with at("2026-04-20 02:00 +0800"):
        settlement_run(day=date(2026, 4, 19))
    with at("2026-04-21 02:00 +0800"):
        settlement_run(day=date(2026, 4, 20))
    days = dict(Settlement.objects.filter(merchant=shop).values_list("date", "released"))
    # To the 19th (the first run): the old operator's releases (one session, a used-up card, the 19th's
    # session); the 20th: the new operator's session on the card that continued.
    assert (days[date(2026, 4, 19)], days[date(2026, 4, 20)]) == (150_000, 25_000)
    shop = Merchant.objects.get(pk=shop.pk)
    before = merchant_particulars_on(merchant=shop, day=date(2026, 4, 19))
    after = merchant_particulars_on(merchant=shop, day=date(2026, 4, 20))
    assert before.name == "美丽时光" and after.name == "丽人美容有限公司"
    assert after.license_number == NEW_LICENCE and before.license_number != NEW_LICENCE
    assert ledger_ok(ledger_verify())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_days_refund_killed_mid_way_resumes_and_refunds_each_card_once():
    regulator = UserFactory(role="regulator")
    salon = builders.merchant(category="beauty")
    pack = builders.session_pack(salon, price=10_000, sessions=2)
    with at("2026-03-01 10:00 +0800"):
        cards = [builders.paid_card(pack) for _ in range(300)]
    with at(ASKED):
        change = operator_change_request(
            merchant_id=salon.pk,
            new_operator_name="新店主",
            new_license_number=NEW_LICENCE,
            changes_on=CHANGES_ON,
            requested_by=salon.user,
        )
        regulator_operator_change_approve(regulator=regulator, change_id=change.pk)
    with at("2026-04-01 10:00 +0800"):
        for card in cards[:50]:
            consent(card, True)
    # The day's job as the hourly run starts it, its first chunk taken by a worker that is killed.
    with at("2026-04-20 00:25 +0800"):
        job = MassRefund.objects.create(
            merchant=salon, reason="operator_change", operator_change=change, total=250,
            created_at=clock.now(), updated_at=clock.now(),
        )  # fmt: skip
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_DEBUG": "1"}
    env["FAULT_KILL_AT"] = "mass_refund.after_chunk"
    script = (
        "import time_machine\nfrom refunds.services import mass_refund_step\n"
        "with time_machine.travel('2026-04-20 00:26 +0800', tick=False):\n"
        f"    mass_refund_step(job_id={job.pk}, chunk=100)\n"
    )
    from django.db import connection

    connection.close()
    crashed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert MassRefund.objects.get(pk=job.pk).done == 100  # the first chunk committed, then the worker died
    assert Refund.objects.count() == 100
    # The hourly run finds the job running and leaves it to the sweep, which resumes the stale job.
    with at("2026-04-20 01:25 +0800"):
        operator_changes_due()
        assert mass_refunds_resume() == 1
        operator_changes_due()
    job.refresh_from_db()
    assert (job.state, job.done, job.total) == ("done", 250, 250)
    assert Refund.objects.count() == 250 and JournalEntry.objects.filter(code="refund").count() == 250
    refunded = set(Refund.objects.values_list("card_id", flat=True))
    assert refunded == {card.pk for card in cards[50:]}  # each non-consenting card once, no consenting one
    assert Account.objects.filter(card__in=cards[:50], balance=10_000).count() == 50
    assert OperatorChange.objects.get(pk=change.pk).state == "completed"
    assert ledger_ok(ledger_verify())


def test_the_profile_sets_the_notice(salon, settings):
    """The notice is the profile's: a day that meets it is accepted, one a day short is not."""
    shop, _cards = salon
    days = rule("operator_change_notice_days").value
    with at(ASKED):
        short = ask(shop, changes_on=(date(2026, 3, 10) + timedelta(days=days - 1)).isoformat())
        enough = ask(shop, changes_on=(date(2026, 3, 10) + timedelta(days=days)).isoformat())
    assert short.json()["code"] == "notice_too_short" and enough.status_code == 201


def browser_of(user) -> Client:
    return sign_in(Client(), user)


def test_the_pages_ask_approve_and_answer(salon, regulator, django_capture_on_commit_callbacks):
    shop, cards = salon
    with at(ASKED):
        asked = browser_of(shop.user).post(
            "/m/operator-change/",
            {"new_operator_name": "丽人美容有限公司", "new_license_number": NEW_LICENCE, "changes_on": "2026-04-20"},
            follow=True,
        )
    assert 'data-testid="operator-change" data-state="requested"' in asked.content.decode()
    change = OperatorChange.objects.get()
    officer = browser_of(regulator)
    with at(ASKED):
        listed = officer.get("/r/operator-changes/").content.decode()
        assert f'data-change-id="{change.pk}"' in listed
        unexplained = officer.post(f"/r/operator-changes/{change.pk}/decide/", {"decision": "reject", "note": ""})
        assert unexplained.status_code == 400 and OperatorChange.objects.get().state == "requested"
        with django_capture_on_commit_callbacks(execute=True):
            officer.post(f"/r/operator-changes/{change.pk}/decide/", {"decision": "approve", "note": ""})
    assert OperatorChange.objects.get().state == "approved"
    holder = browser_of(cards[2].consumer.user)
    with at("2026-04-01 10:00 +0800"):
        page = holder.get(f"/c/cards/{cards[2].pk}/").content.decode()
        assert 'data-testid="operator-change-notice" data-consent="none"' in page
        assert "丽人美容有限公司" in page and "2026年4月20日" in page
        answered = holder.post(f"/c/cards/{cards[2].pk}/operator-consent/", {"consent": "1"}, follow=True)
    assert 'data-consent="yes"' in answered.content.decode()
    assert OperatorConsent.objects.get(card=cards[2]).consent is True
    with at("2026-04-20 08:00 +0800"):
        closed = holder.get(f"/c/cards/{cards[2].pk}/").content.decode()
    assert 'data-testid="operator-consent-yes"' not in closed  # the day has come: no more answers
    with at("2026-04-20 08:00 +0800"), django_capture_on_commit_callbacks(execute=True):
        operator_changes_due()
    with at("2026-04-20 08:00 +0800"):  # a month on: the officer signs in again (idle sessions end)
        progress = browser_of(regulator).get(f"/r/operator-changes/{change.pk}/").content.decode()
    assert 'data-testid="operator-change-refunds" data-done="3" data-total="3"' in progress  # all but cards[2]


def test_an_answer_sent_twice_under_one_idempotency_key_is_replayed(approved):
    _shop, cards, change = approved
    client = client_for(cards[3].consumer.user)
    path = f"/api/v1/cards/{cards[3].pk}/operator-consent"
    with at("2026-04-01 10:00 +0800"):
        first = client.post(path, {"consent": True}, format="json", headers={"idempotency-key": "answer-1"})
        again = client.post(path, {"consent": True}, format="json", headers={"idempotency-key": "answer-1"})
        other = client.post(path, {"consent": False}, format="json", headers={"idempotency-key": "answer-1"})
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")
    assert OperatorConsent.objects.get(card=cards[3], operator_change=change).consent is True
