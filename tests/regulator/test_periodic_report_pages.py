"""The regulator's periodic report pages (/r/reports/): the form generates a report and goes on to its
page, which follows it to done and offers the PDF and the Excel workbook."""

from __future__ import annotations

import pytest
import time_machine
from django.test import Client

from regulator.models import PeriodicReport
from tests.factories import UserFactory, sign_in
from tests.regulator.periodic_world import REPORT_AT, build_city
from tests.words.test_no_machine_text import visible_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _signed_in_when_the_report_is_asked_for():
    """The regulator browses in the days after the month reported on (its session lives then: a
    session saved with the clock moved back would have expired by today's)."""
    with time_machine.travel(REPORT_AT, tick=True):
        yield


@pytest.fixture
def browser(regulator):
    client = Client()
    sign_in(client, regulator)
    return client


def test_the_form_offers_recent_months_and_quarters_and_generates_the_one_chosen(
    db, browser, regulator, django_capture_on_commit_callbacks
):
    build_city()
    with time_machine.travel(REPORT_AT, tick=False):
        page = browser.get("/r/reports/")
        assert page.status_code == 200
        text = visible_text(page.content.decode())
        assert "2026年3月" in text and "2026年第1季度" in text and "尚未生成任何报告" in text
        assert 'value="month-2026-3" selected' in page.content.decode()  # last month by default
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post("/r/reports/", {"period": "quarter-2026-1"})
    report = PeriodicReport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/r/reports/{report.pk}/"
    assert (report.period, report.year, report.number, report.requested_by) == ("quarter", 2026, 1, regulator)

    detail = browser.get(response["Location"])
    text = visible_text(detail.content.decode())
    assert "2026年第1季度" in text and "全市" in text and regulator.username in text
    assert "期末托管资金余额" in text and "¥1,700.00" in text  # March ends the quarter
    assert f'href="/r/reports/{report.pk}.pdf"' in detail.content.decode()
    pdf = browser.get(f"/r/reports/{report.pk}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    xlsx = browser.get(f"/r/reports/{report.pk}.xlsx")
    assert xlsx.status_code == 200 and xlsx["Content-Disposition"].endswith('periodic-report-2026-Q1.xlsx"')

    listed = visible_text(browser.get("/r/reports/").content.decode())
    assert "2026年第1季度" in listed and "已完成" in listed


def test_a_report_being_written_shows_its_progress_and_polls_until_done(db, browser):
    build_city()
    with time_machine.travel(REPORT_AT, tick=False):
        browser.post("/r/reports/", {"period": "month-2026-3"})  # nothing commits: no step runs
    report = PeriodicReport.objects.get()
    page = browser.get(f"/r/reports/{report.pk}/").content.decode()
    assert "<progress" in page and f'hx-get="/r/reports/{report.pk}/status/"' in page
    assert browser.get(f"/r/reports/{report.pk}.pdf").status_code == 404  # not written yet

    from regulator.services.periodic_reports import periodic_report_step

    with time_machine.travel(REPORT_AT, tick=False):
        while periodic_report_step(report_id=report.pk):
            pass
    status = browser.get(f"/r/reports/{report.pk}/status/")
    assert status["Cache-Control"] == "no-store"
    fragment = status.content.decode()
    assert "hx-get" not in fragment and f"/r/reports/{report.pk}.xlsx" in fragment


def test_a_period_not_yet_begun_is_refused_on_the_form(db, browser):
    with time_machine.travel(REPORT_AT, tick=False):
        response = browser.post("/r/reports/", {"period": "month-2026-5"})
    assert response.status_code == 400 and not PeriodicReport.objects.exists()


def test_only_regulators_reach_the_reports(db):
    client = Client()
    assert client.get("/r/reports/").status_code == 302  # to the log-in page
    client.force_login(UserFactory(role="merchant"))
    assert client.get("/r/reports/").status_code == 403
