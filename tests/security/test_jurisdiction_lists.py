"""Lists, counts, charts and exports hold the rows of a regulator's jurisdiction alone, over the city
of tests/security/world.py: every merchant there trades in ``DISTRICT``. The district regulator of
that district sees what the city regulator sees; the regulator of another district (where no
merchant trades) sees empty lists, zero counts and exports with a header only. The ledger's
verification and the reconciliations are the whole book's, for every regulator.

Object routes (404 outside) are the authorization matrix's (test_authorization_matrix.py).
"""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from merchants.models import Merchant
from tests.conftest import client_for
from tests.factories import sign_in
from tests.security.world import DISTRICT

pytestmark = pytest.mark.django_db

REGULATORS = ("regulator", "district_regulator", "outside_regulator")
LISTS = [
    "/api/v1/cards",
    "/api/v1/redemptions",
    "/api/v1/complaints",
    "/api/v1/regulator/merchants",
    "/api/v1/regulator/refunds",
    "/api/v1/regulator/filings",
    "/api/v1/regulator/audit-log",
]
EXPORTS = ["merchants", "cards", "refunds", "complaints", "journal"]


def counts(world, path: str) -> dict[str, int]:
    found = {}
    for role in REGULATORS:
        response = client_for(world.users[role]).get(path)
        assert response.status_code == 200, (role, path, response.content[:200])
        found[role] = response.json()["count"]
    return found


@pytest.mark.parametrize("path", LISTS)
def test_a_list_holds_the_jurisdictions_rows_alone(world, path):
    found = counts(world, path)
    assert found["regulator"] > 0  # the city has rows of every kind: the test can fail
    assert found["outside_regulator"] == 0
    if path != "/api/v1/regulator/audit-log":
        assert found["district_regulator"] == found["regulator"]


def test_the_audit_log_of_a_district_regulator_holds_its_merchants_lines_and_entries(world):
    rows = client_for(world.users["district_regulator"]).get("/api/v1/regulator/audit-log", {"page_size": 200})
    body = rows.json()
    districts = {str(pk): district for pk, district in Merchant.objects.values_list("pk", "district")}
    actions = [row for row in body["results"] if row["kind"] == "action"]
    journal = [row for row in body["results"] if row["kind"] == "journal"]
    assert actions and journal
    assert {districts[row["merchant"]] for row in actions} == {DISTRICT}


def test_a_merchant_outside_is_no_filter_of_the_audit_log_or_the_complaints_page(world):
    outside = client_for(world.users["outside_regulator"])
    response = outside.get("/api/v1/regulator/audit-log", {"merchant": world.ids["merchant"]})
    assert (response.status_code, response.json()["code"]) == (404, "not_found")
    page = Client()
    sign_in(page, world.users["outside_regulator"])
    assert page.get("/r/audit-log/", {"merchant": world.ids["merchant"]}).context["rows"] == []


@pytest.mark.parametrize("name", EXPORTS)
def test_an_export_holds_the_jurisdictions_rows_alone(world, name):
    rows = {}
    for role in REGULATORS:
        response = client_for(world.users[role]).get(f"/api/v1/regulator/exports/{name}.csv")
        text = b"".join(response.streaming_content).decode("utf-8-sig")
        rows[role] = list(csv.reader(io.StringIO(text)))[1:]
    assert rows["regulator"]
    assert rows["outside_regulator"] == []
    assert rows["district_regulator"] == rows["regulator"]  # the journal too: a refund paid out is its merchant's


def test_complaint_statistics_count_the_jurisdictions_complaints_alone(world):
    stats = {
        role: client_for(world.users[role]).get("/api/v1/regulator/complaints/stats").json() for role in REGULATORS
    }
    assert stats["regulator"]["total"] > 0
    assert stats["district_regulator"]["total"] == stats["regulator"]["total"]
    assert stats["outside_regulator"]["total"] == 0
    assert stats["outside_regulator"]["by_district"] == []
    assert stats["outside_regulator"]["by_category"] == []


def test_the_dashboards_counts_and_charts_are_of_the_jurisdiction(world):
    pages = {}
    for role in REGULATORS:
        client = Client()
        sign_in(client, world.users[role])
        pages[role] = client.get("/r/")
    city, own, outside = (pages[role].context for role in REGULATORS)
    assert city["levels"]["total"] == own["levels"]["total"] == Merchant.objects.count() > 0
    assert outside["levels"]["total"] == 0
    assert city["escrow"] == own["escrow"] and city["escrow"]["escrow"] > 0
    assert outside["escrow"] == {"escrow": 0, "cards": 0}
    assert outside["overdue_complaints"] == 0 and outside["flagged"] == []
    assert [row["count"] for row in outside["histogram"]] == [0] * 10
    assert all(row["sales"] == row["released"] == 0 for row in outside["trend"])
    assert any(row["sales"] for row in own["trend"])
    # The district chart and the filters show the regulator's own districts.
    assert [row["code"] for row in own["district_rows"]] == [DISTRICT]
    assert len(city["district_rows"]) == 16
    assert b'id="chart-escrow-by-district"' in pages["district_regulator"].content
    assert "朝阳区" in pages["district_regulator"].content.decode()


def test_every_regulator_sees_the_one_ledgers_verification_and_reconciliations(world):
    verified = {
        role: client_for(world.users[role]).get("/api/v1/regulator/ledger/verify").json() for role in REGULATORS
    }
    assert verified["regulator"]["balanced"] is True
    assert verified["district_regulator"] == verified["outside_regulator"] == verified["regulator"]
    reconciliations = counts(world, "/api/v1/regulator/reconciliations")
    assert len(set(reconciliations.values())) == 1
