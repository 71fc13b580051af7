"""The regulator's merchant list, risk breakdown and audit log over HTTP, and who may read them."""

from datetime import timedelta

import pytest
import time_machine

from core import clock
from escrow.models import JournalEntry
from regulator.services.actions import merchant_action_take
from regulator.services.risk import compute_risk
from tests.cards import builders
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def city(regulator):
    gym = builders.merchant(category="fitness", district="朝阳区", name="Gym")
    school = builders.merchant(category="education", district="海淀区", name="School")
    builders.paid_card(builders.session_pack(gym, price=80_000, sessions=8))
    builders.paid_card(builders.session_pack(school, price=30_000, sessions=3))
    compute_risk()
    merchant_action_take(merchant_id=school.pk, actor_id=regulator.pk, action="flag", reason="parents complain")
    return gym, school


def test_the_list_carries_api_fields_and_filters_by_district_category_and_flag(regulator, city):
    gym, _school = city
    staff = client_for(regulator)
    body = staff.get("/api/v1/regulator/merchants").json()
    assert body["count"] == 2
    row = next(r for r in body["results"] if r["id"] == str(gym.pk))
    for field in (
        "id", "name", "district", "category", "risk_score", "risk_level", "flagged", "sales_frozen",
        "releases_frozen", "escrow_outstanding", "active_cards", "complaints_90d",
    ):  # fmt: skip
        assert field in row
    assert (row["escrow_outstanding"], row["active_cards"], row["complaints_90d"]) == (80_000, 1, 0)
    assert row["currency"] == "cny" and row["district_code"] == "110105"
    assert [r["name"] for r in staff.get("/api/v1/regulator/merchants?district=110108").json()["results"]] == ["School"]
    assert [r["name"] for r in staff.get("/api/v1/regulator/merchants?district=海淀区").json()["results"]] == ["School"]
    assert [r["name"] for r in staff.get("/api/v1/regulator/merchants?category=fitness").json()["results"]] == ["Gym"]
    assert [r["name"] for r in staff.get("/api/v1/regulator/merchants?flagged=true").json()["results"]] == ["School"]
    assert [
        r["name"] for r in staff.get("/api/v1/regulator/merchants?ordering=-escrow_outstanding").json()["results"]
    ] == [
        "Gym",
        "School",
    ]
    bad = staff.get("/api/v1/regulator/merchants?ordering=password")
    assert bad.status_code == 400 and "ordering" in bad.json()["errors"]
    assert staff.get("/api/v1/regulator/merchants?flagged=perhaps").status_code == 400


def test_risk_breakdown_explains_each_signal_in_the_requests_language(regulator, city):
    gym, _ = city
    staff = client_for(regulator)
    zh = staff.get(f"/api/v1/regulator/merchants/{gym.pk}/risk").json()
    en = staff.get(f"/api/v1/regulator/merchants/{gym.pk}/risk", HTTP_ACCEPT_LANGUAGE="en").json()
    assert zh["risk_level"] in ("low", "medium", "high") and 0 <= zh["risk_score"] <= 100
    assert len(zh["signals"]) == 11
    escrow = next(s for s in zh["signals"] if s["name"] == "escrow_outstanding")
    assert escrow["value"] == 80_000 and "托管" in escrow["explanation"]
    assert "escrow" in next(s for s in en["signals"] if s["name"] == "escrow_outstanding")["explanation"]
    assert len(zh["history"]) == 1


def test_risk_can_be_recomputed_on_demand_for_one_merchant(regulator, city):
    gym, _ = city
    staff = client_for(regulator)
    with time_machine.travel(clock.now() + timedelta(hours=1), tick=False):
        body = staff.post(f"/api/v1/regulator/merchants/{gym.pk}/risk").json()
    assert len(body["history"]) == 2


def test_the_audit_log_holds_actions_and_journal_entries_newest_first(regulator, city):
    gym, _school = city
    staff = client_for(regulator)
    body = staff.get("/api/v1/regulator/audit-log").json()
    assert body["count"] == JournalEntry.objects.count() + 1
    times = [r["created_at"] for r in body["results"]]
    assert times == sorted(times, reverse=True)
    action = next(r for r in body["results"] if r["kind"] == "action")
    assert (action["verb"], action["actor"], action["reason"]) == ("flag", regulator.username, "parents complain")
    assert action["changes"]["flagged"] == [False, True]
    purchases = [r for r in body["results"] if r["verb"] == "purchase"]
    assert sorted(r["amount"] for r in purchases) == [30_000, 80_000] and all(len(r["hash"]) == 64 for r in purchases)
    only_actions = staff.get("/api/v1/regulator/audit-log?kind=action").json()
    assert only_actions["count"] == 1
    mine = staff.get(f"/api/v1/regulator/audit-log?merchant={gym.pk}").json()
    assert [r["verb"] for r in mine["results"]] == ["purchase"] and mine["results"][0]["amount"] == 80_000
    assert staff.get("/api/v1/regulator/audit-log?kind=gossip").status_code == 400


def test_the_audit_log_pages_through_a_long_history(regulator, city):
    gym = city[0]
    for n in range(60):
        merchant_action_take(
            merchant_id=gym.pk, actor_id=regulator.pk, action="flag" if n % 2 == 0 else "unflag", reason=f"r{n}"
        )
    staff = client_for(regulator)
    first = staff.get("/api/v1/regulator/audit-log?kind=action").json()
    second = staff.get(first["next"]).json()
    assert first["count"] == 61 and len(first["results"]) == 50 and len(second["results"]) == 11
    ids = {r["id"] for r in first["results"]} | {r["id"] for r in second["results"]}
    assert len(ids) == 61


ENDPOINTS = [
    ("get", "/api/v1/regulator/merchants"),
    ("get", "/api/v1/regulator/merchants/{merchant}/risk"),
    ("post", "/api/v1/regulator/merchants/{merchant}/risk"),
    ("get", "/api/v1/regulator/merchants/{merchant}/actions"),
    ("post", "/api/v1/regulator/merchants/{merchant}/actions"),
    ("get", "/api/v1/regulator/actions/{action}"),
    ("get", "/api/v1/regulator/audit-log"),
    ("get", "/api/v1/regulator/ledger/verify"),
    ("get", "/api/v1/regulator/reconciliations"),
    ("post", "/api/v1/regulator/risk/compute"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_only_regulators_reach_the_regulator_endpoints(api, regulator, city, method, path):
    gym, school = city
    action = school.regulator_actions.get()
    url = path.format(merchant=gym.pk, action=action.pk)
    body = {"action": "freeze_sales", "reason": "check"}
    assert getattr(api, method)(url, body, format="json").status_code == 401
    for outsider in (builders.consumer().user, gym.user):
        response = getattr(client_for(outsider), method)(url, body, format="json")
        assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    assert getattr(client_for(regulator), method)(url, body, format="json").status_code in (200, 202)
