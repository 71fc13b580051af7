"""The periodic report on demand (``/api/v1/regulator/reports/periodic``) and who sees which report;
the scheduled job over the regulators' jurisdictions."""

from __future__ import annotations

import hashlib
import io

import openpyxl
import pytest
import time_machine

from regulator.models import PeriodicReport
from regulator.selectors.jurisdiction import CITY, Jurisdiction
from regulator.services.periodic_reports import STEPS, periodic_reports_scheduled
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.regulator.periodic_world import HAIDIAN, REPORT_AT, build_city

pytestmark = pytest.mark.django_db

URL = "/api/v1/regulator/reports/periodic"
MARCH = {"period": "month", "year": 2026, "number": 3}


@pytest.fixture
def city():
    return build_city()


@pytest.fixture
def inspector(regulator):
    return client_for(regulator)


def generate(client, body, capture):
    """POST the request at ``REPORT_AT``; the worker's steps run when the request's transaction commits."""
    with time_machine.travel(REPORT_AT, tick=False), capture(execute=True):
        return client.post(URL, body, format="json")


def test_a_regulator_asks_for_a_report_gets_202_and_follows_it_to_done(
    city, inspector, regulator, django_capture_on_commit_callbacks
):
    response = generate(inspector, MARCH, django_capture_on_commit_callbacks)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "queued" and body["progress"] == {"done": 0, "total": STEPS}
    assert body["label"] == "2026年3月" and body["jurisdiction"] == {"districts": "all", "categories": "all"}
    assert body["requested_by"] == regulator.username and body["generation"] == 1 and body["files"]["pdf"] is None

    followed = inspector.get(f"{URL}/{body['id']}")
    assert followed.status_code == 200
    report = followed.json()
    assert report["state"] == "done" and report["progress"] == {"done": STEPS, "total": STEPS}
    assert report["starts_at"] == "2026-03-01T00:00:00+08:00" and report["ends_at"] == "2026-04-01T00:00:00+08:00"
    assert report["figures"]["refunds"][0]["amount"] == 140_000 and report["currency"] == "cny"

    pdf = inspector.get(report["files"]["pdf"]["url"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert hashlib.sha256(pdf.content).hexdigest() == report["files"]["pdf"]["sha256"] == pdf["X-Content-SHA256"]
    assert 'filename="periodic-report-2026-03.pdf"' in pdf["Content-Disposition"]
    xlsx = inspector.get(f"{URL}/{body['id']}.xlsx")
    assert xlsx.status_code == 200 and len(xlsx.content) == report["files"]["xlsx"]["size"]
    assert "托管资金（按区）" in openpyxl.load_workbook(io.BytesIO(xlsx.content)).sheetnames

    listed = inspector.get(URL).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == body["id"] and "figures" not in listed["results"][0]


def test_asking_again_returns_the_same_report_and_regenerate_makes_the_next(
    city, inspector, django_capture_on_commit_callbacks
):
    first = generate(inspector, MARCH, django_capture_on_commit_callbacks).json()
    again = generate(inspector, MARCH, django_capture_on_commit_callbacks).json()
    assert again["id"] == first["id"] and again["state"] == "done"
    regenerated = generate(inspector, {**MARCH, "regenerate": True}, django_capture_on_commit_callbacks).json()
    assert regenerated["id"] != first["id"] and regenerated["generation"] == 2
    assert PeriodicReport.objects.count() == 2


def test_a_quarter_in_english_is_labelled_as_english_readers_write_it(
    city, inspector, django_capture_on_commit_callbacks
):
    with time_machine.travel(REPORT_AT, tick=False), django_capture_on_commit_callbacks(execute=True):
        response = inspector.post(
            URL, {"period": "quarter", "year": 2026, "number": 1}, format="json", HTTP_ACCEPT_LANGUAGE="en"
        )
    assert response.status_code == 202 and response.json()["label"] == "Q1 2026"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period": "month", "year": 2026, "number": 13}, "number"),
        ({"period": "quarter", "year": 2026, "number": 5}, "number"),
        ({"period": "month", "year": 2026, "number": 5}, "number"),  # not begun at REPORT_AT
        ({"period": "week", "year": 2026, "number": 1}, "period"),
        ({"period": "month", "year": 1980, "number": 1}, "year"),
        ({"period": "month", "number": 1}, "year"),
    ],
)
def test_a_period_that_cannot_be_reported_is_400_naming_the_field(inspector, body, field):
    with time_machine.travel(REPORT_AT, tick=False):
        response = inspector.post(URL, body, format="json")
    assert response.status_code == 400 and field in response.json()["errors"], response.content
    assert not PeriodicReport.objects.exists()


def test_the_files_of_a_report_under_way_are_409_report_not_ready(city, inspector):
    with time_machine.travel(REPORT_AT, tick=False):
        body = inspector.post(URL, MARCH, format="json").json()  # nothing commits: the steps never run
    for suffix in (".pdf", ".xlsx"):
        response = inspector.get(f"{URL}/{body['id']}{suffix}")
        assert response.status_code == 409 and response.json()["code"] == "report_not_ready"


def test_a_district_regulator_sees_the_districts_reports_and_not_the_citys(
    city, monkeypatch, django_capture_on_commit_callbacks
):
    district = UserFactory(role="regulator")
    haidian = Jurisdiction(districts=(HAIDIAN,))

    def jurisdiction_of(user):
        return haidian if user.pk == district.pk else CITY

    for module in ("regulator.api.reports", "regulator.selectors.periodic_reports"):
        monkeypatch.setattr(f"{module}.jurisdiction_of", jurisdiction_of)
    city_report = generate(client_for(UserFactory(role="regulator")), MARCH, django_capture_on_commit_callbacks).json()
    mine = generate(client_for(district), MARCH, django_capture_on_commit_callbacks).json()
    assert mine["id"] != city_report["id"] and mine["jurisdiction"] == {"districts": [HAIDIAN], "categories": "all"}

    client = client_for(district)
    assert [row["id"] for row in client.get(URL).json()["results"]] == [mine["id"]]
    for suffix in ("", ".pdf", ".xlsx"):
        response = client.get(f"{URL}/{city_report['id']}{suffix}")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert client.get(f"{URL}/{mine['id']}.pdf").status_code == 200
    assert {row["id"] for row in client_for(UserFactory(role="regulator")).get(URL).json()["results"]} == {
        mine["id"],
        city_report["id"],
    }


def test_the_scheduled_job_makes_a_report_for_every_distinct_jurisdiction_of_the_regulators(city, monkeypatch):
    haidian = Jurisdiction(districts=(HAIDIAN,))
    UserFactory(role="regulator")
    district_users = {UserFactory(role="regulator").pk, UserFactory(role="regulator").pk}
    monkeypatch.setattr(
        "regulator.services.periodic_reports.jurisdiction_of",
        lambda user: haidian if user.pk in district_users else CITY,
    )
    with time_machine.travel(REPORT_AT, tick=False):
        made = periodic_reports_scheduled()
        periodic_reports_scheduled()
    assert sorted((r.period, r.jurisdiction_key) for r in made) == [
        ("month", "all"),
        ("month", f"districts={HAIDIAN}"),
        ("quarter", "all"),
        ("quarter", f"districts={HAIDIAN}"),
    ]
    assert PeriodicReport.objects.count() == 4
