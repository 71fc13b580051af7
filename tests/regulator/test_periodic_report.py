"""The periodic report of a jurisdiction (regulator.reports.periodic_*, regulator.services.periodic_reports):
its figures against a March 2026 computed by hand (tests/regulator/periodic_world.py), Beijing
periods, the jurisdiction's limits, the PDF's and the XLSX's contents, and the scheduled job."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date, datetime

import openpyxl
import pypdf
import pytest
import time_machine
from django.conf import settings

from core import clock
from regulator.models import PeriodicReport, PeriodicReportFile
from regulator.reports.periodic_figures import (
    COMPLAINT_FIELDS,
    ESCROW_FIELDS,
    REFUND_FIELDS,
    escrow_by,
    escrow_figures,
    totals,
)
from regulator.reports.periods import MONTH, QUARTER, Period, period_containing, period_parse
from regulator.selectors.jurisdiction import CITY, Jurisdiction
from regulator.services.periodic_reports import (
    STEPS,
    periodic_report_generate,
    periodic_report_step,
    periodic_reports_scheduled,
)
from tests.factories import UserFactory
from tests.regulator.periodic_world import CHAOYANG, HAIDIAN, REPORT_AT, bj, build_city

pytestmark = pytest.mark.django_db

MARCH = Period(MONTH, 2026, 3)
Q1 = Period(QUARTER, 2026, 1)


@pytest.fixture
def city():
    return build_city()


def made(jurisdiction: Jurisdiction = CITY, period: Period = MARCH, **options) -> PeriodicReport:
    """The report, generated and built step by step at ``REPORT_AT`` (as the worker would)."""
    with time_machine.travel(REPORT_AT, tick=False):
        report = periodic_report_generate(jurisdiction=jurisdiction, period=period, **options)
        while periodic_report_step(report_id=report.pk):
            pass
    return PeriodicReport.objects.get(pk=report.pk)


def pdf_text(report: PeriodicReport) -> str:
    content = bytes(report.files.get(kind="pdf").content)
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "".join(re.sub(r"\s*\n\s*", "", page.extract_text()) for page in reader.pages)


def workbook(report: PeriodicReport) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(bytes(report.files.get(kind="xlsx").content)))


# --- periods ---------------------------------------------------------------------------------------


def test_periods_are_beijing_months_and_quarters_with_the_names_people_write():
    assert MARCH.label == "2026年3月" and Q1.label == "2026年第1季度"
    assert Period(QUARTER, 2026, 3).label == "2026年第3季度" and Period(MONTH, 2026, 11).label == "2026年11月"
    assert MARCH.starts_at == datetime(2026, 3, 1, tzinfo=clock.BEIJING)
    assert MARCH.ends_at == datetime(2026, 4, 1, tzinfo=clock.BEIJING)  # 16:00 UTC on 31 March
    assert MARCH.ends_at.astimezone(clock.BEIJING).utcoffset().total_seconds() == 8 * 3600
    assert Q1.first_day == date(2026, 1, 1) and Q1.last_day == date(2026, 3, 31) and Q1.span == "2026年1月1日至3月31日"
    assert Period(QUARTER, 2026, 4).ends_at == datetime(2027, 1, 1, tzinfo=clock.BEIJING)
    assert Period(MONTH, 2026, 1).previous() == Period(MONTH, 2025, 12)
    assert Period(QUARTER, 2026, 1).previous() == Period(QUARTER, 2025, 4)
    assert period_containing(date(2026, 8, 31), QUARTER) == Period(QUARTER, 2026, 3)


def test_a_period_not_yet_begun_or_out_of_range_is_refused_by_field():
    now = bj("2026-04-01 04:10")
    assert period_parse(kind="month", year=2026, number=4, now=now) == Period(MONTH, 2026, 4)  # under way
    for kind, year, number, field in [
        ("month", 2026, 5, "number"),  # not begun
        ("month", 2026, 13, "number"),
        ("quarter", 2026, 0, "number"),
        ("week", 2026, 1, "period"),
        ("quarter", 1999, 1, "year"),
    ]:
        with pytest.raises(Exception) as refused:
            period_parse(kind=kind, year=year, number=number, now=now)
        assert field in refused.value.errors, (kind, year, number)


def test_money_at_2330_beijing_on_the_last_day_counts_in_that_month_and_at_0030_in_the_next(city):
    """23:30 Beijing on 31 March is 15:30 UTC on 31 March; 00:30 Beijing on 1 April is 16:30 UTC on
    31 March, the same UTC day, but April in Beijing."""
    with time_machine.travel(REPORT_AT, tick=False):
        march = escrow_figures(jurisdiction=CITY, starts_at=MARCH.starts_at, cutoff=MARCH.ends_at)
        april = escrow_figures(
            jurisdiction=CITY, starts_at=Period(MONTH, 2026, 4).starts_at, cutoff=bj("2026-04-01 04:10")
        )
    salon = next(row for row in march if row["category"] == "beauty")
    assert salon["paid_in"] == 180_000 and salon["cards_sold"] == 2  # the 23:30 card is March's
    gym_march = next(row for row in march if row["category"] == "fitness")
    gym_april = next(row for row in april if row["category"] == "fitness")
    assert gym_march["paid_in"] == 0 and gym_march["cards_sold"] == 0
    assert gym_april["paid_in"] == 100_000 and gym_april["cards_sold"] == 1  # the 00:30 card is April's
    assert gym_april["held_start"] == gym_march["held_end"] == 80_000


# --- figures ---------------------------------------------------------------------------------------


def test_march_figures_match_the_hand_computed_city(city):
    report = made()
    figures = report.figures
    assert report.state == "done" and report.done == report.total == STEPS

    escrow = {(row["district"], row["category"]): row for row in figures["escrow"]}
    assert escrow[(CHAOYANG, "fitness")] == {
        "district": CHAOYANG,
        "category": "fitness",
        "held_start": 100_000,
        "paid_in": 0,
        "released": 20_000,
        "refunded": 0,
        "corrected": 0,
        "held_end": 80_000,
        "cards_sold": 0,
    }
    assert [escrow[(HAIDIAN, "beauty")][k] for k in ESCROW_FIELDS] == [0, 180_000, 0, 90_000, 0, 90_000, 2]
    assert [escrow[(CHAOYANG, "education")][k] for k in ESCROW_FIELDS] == [0, 50_000, 0, 50_000, 0, 0, 1]
    assert totals(figures["escrow"], ESCROW_FIELDS) == {
        "held_start": 100_000,
        "paid_in": 230_000,
        "released": 20_000,
        "refunded": 140_000,
        "corrected": 0,
        "held_end": 170_000,
        "cards_sold": 3,
    }
    by_district = {row["district"]: row["held_end"] for row in escrow_by(figures["escrow"], "district")}
    assert by_district == {CHAOYANG: 80_000, HAIDIAN: 90_000}

    assert figures["filings"] == {
        "required": 2,
        "submitted": 1,
        "accepted": 1,
        "due": 1,
        "missed": 1,
        "by_state": {"required": 1, "submitted": 0, "accepted": 1, "returned": 0},
    }

    complaints = {row["category"]: row for row in figures["complaints"]}
    assert complaints["service_quality"] == {
        "category": "service_quality",
        "count": 2,
        "on_time": 1,
        "answered_late": 1,
        "unanswered_late": 0,
        "pending": 0,
        "hotline": 0,
    }
    assert complaints["refund_refused"] == {
        "category": "refund_refused",
        "count": 2,
        "on_time": 0,
        "answered_late": 0,
        "unanswered_late": 1,
        "pending": 1,
        "hotline": 1,
    }
    assert set(complaints) == {"service_quality", "refund_refused"}  # 28 February and 1 April are outside

    assert figures["refunds"] == [
        {
            "reason": "cooling_off",
            "count": 2,
            "amount": 140_000,
            "fee": 0,
            "on_time": 1,
            "paid_late": 0,
            "unpaid_late": 1,
            "pending": 0,
            "failed": 0,
        }
    ]

    riskiest = figures["riskiest"]
    assert [(row["name"], row["score"], row["level"]) for row in riskiest] == [
        ("朝阳健身", 70, "high"),  # its 1 April assessment (20) is after March
        ("海淀美发", 40, "medium"),
    ]
    assert [signal["name"] for signal in riskiest[0]["signals"]] == ["overdue_complaints", "sales_surge", "refund_rate"]


def test_a_district_report_counts_that_districts_merchants_alone(city):
    report = made(Jurisdiction(districts=(HAIDIAN,)))
    figures = report.figures
    assert {row["district"] for row in figures["escrow"]} == {HAIDIAN}
    assert totals(figures["escrow"], ESCROW_FIELDS)["held_end"] == 90_000
    assert totals(figures["complaints"], COMPLAINT_FIELDS)["count"] == 2
    assert totals(figures["refunds"], REFUND_FIELDS) | {} == {
        "count": 1,
        "amount": 90_000,
        "fee": 0,
        "on_time": 0,
        "paid_late": 0,
        "unpaid_late": 1,
        "pending": 0,
        "failed": 0,
    }
    assert figures["filings"]["required"] == 0 and figures["filings"]["missed"] == 1
    assert [row["name"] for row in figures["riskiest"]] == ["海淀美发"]
    assert report.districts == [HAIDIAN] and report.categories is None
    assert "朝阳健身" not in pdf_text(report)


def test_a_trade_report_counts_that_trades_merchants_alone(city):
    figures = made(Jurisdiction(categories=("fitness", "education"))).figures
    assert {row["category"] for row in figures["escrow"]} == {"fitness", "education"}
    assert totals(figures["escrow"], ESCROW_FIELDS)["held_end"] == 80_000
    assert [row["name"] for row in figures["riskiest"]] == ["朝阳健身"]


# --- the files ----------------------------------------------------------------------------------------


def test_the_pdf_states_the_period_the_jurisdiction_and_the_figures_in_yuan(city):
    report = made()
    text = pdf_text(report)
    assert "单用途预付卡监管定期报告" in text
    assert "2026年3月（2026年3月1日至3月31日，北京时间）" in text and "辖区：全市" in text
    assert "定时任务" in text  # no regulator asked: the scheduled job made it
    assert "¥1,700.00" in text  # held at the end
    assert "¥2,300.00" in text and "¥200.00" in text and "¥1,400.00" in text  # paid in, released, refunded
    assert "核对：期初 ¥1,000.00 + 存入 ¥2,300.00 - 划付商户 ¥200.00 - 退还 ¥1,400.00 = 期末 ¥1,700.00，相符" in text
    assert "朝阳区" in text and "海淀区" in text and "健身" in text and "教育培训" in text
    assert "本期收到投诉 4 件" in text and "按时答复率 33.3%" in text
    assert "本期申请退款 2 笔，金额 ¥1,400.00" in text and "按期支付率 50%" in text
    assert "逾期未答复投诉（3 件）" in text and "售卡激增（2.5 倍）" in text
    pages = pypdf.PdfReader(io.BytesIO(bytes(report.files.get(kind="pdf").content))).pages
    assert len(pages) >= 2


def test_the_xlsx_has_a_sheet_per_section_in_chinese_with_yuan_numbers(city):
    book = workbook(made())
    assert book.sheetnames == [
        "概览",
        "托管资金（按区）",
        "托管资金（按行业）",
        "托管资金（明细）",
        "备案",
        "投诉",
        "退款",
        "风险商户",
    ]
    overview = {row[0]: row[1] for row in book["概览"].iter_rows(min_row=2, values_only=True)}
    assert overview["期末托管资金余额（元）"] == 1700 and overview["期内存入托管（元）"] == 2300
    assert overview["辖区"] == "全市" and overview["统计期间"].startswith("2026年3月")
    assert overview["投诉按时答复率"] == pytest.approx(0.333)

    districts = book["托管资金（按区）"]
    header = [cell.value for cell in next(districts.iter_rows(max_row=1))]
    assert header[:2] == ["所在区", "期初余额（元）"] and header[-2:] == ["期末余额（元）", "售卡张数"]
    rows = {row[0].value: row for row in districts.iter_rows(min_row=2)}
    assert rows["朝阳区"][6].value == 800 and rows["海淀区"][6].value == 900 and rows["合计"][6].value == 1700
    assert rows["朝阳区"][6].number_format == "#,##0.00"

    complaints = {row[0]: row for row in book["投诉"].iter_rows(min_row=2, values_only=True)}
    assert complaints["服务质量"][1:4] == (2, 0, 1) and complaints["合计"][1] == 4
    refunds = {row[0]: row for row in book["退款"].iter_rows(min_row=2, values_only=True)}
    assert refunds["冷静期退卡"][1:3] == (2, 1400)
    risky = list(book["风险商户"].iter_rows(min_row=2, values_only=True))
    assert [row[1] for row in risky] == ["朝阳健身", "海淀美发"] and risky[0][5] == 70


def test_the_files_are_stored_with_their_sha256(city):
    report = made()
    files = {file.kind: file for file in report.files.all()}
    assert set(files) == {"pdf", "xlsx"}
    for file in files.values():
        content = bytes(file.content)
        assert file.size == len(content) and file.sha256 == hashlib.sha256(content).hexdigest()
    assert bytes(files["pdf"].content).startswith(b"%PDF")
    assert bytes(files["xlsx"].content).startswith(b"PK")


def test_a_month_without_any_business_still_makes_a_report_saying_so(db):
    report = made(period=Period(MONTH, 2026, 2))
    assert report.state == "done"
    text = pdf_text(report)
    assert "本辖区在本期没有托管资金" in text and "本期没有收到投诉" in text and "本期没有退款申请" in text
    assert "尚无风险评估记录" in text


def test_a_period_not_over_is_reported_up_to_the_moment_it_is_made(city):
    with time_machine.travel("2026-03-20 12:00 +0800", tick=False):
        report = periodic_report_generate(jurisdiction=CITY, period=MARCH)
        while periodic_report_step(report_id=report.pk):
            pass
    report.refresh_from_db()
    escrow = totals(report.figures["escrow"], ESCROW_FIELDS)
    assert escrow["paid_in"] == 140_000  # the 31 March card is not bought yet
    assert "本期尚未结束，数据截至 2026年3月20日 12:00（北京时间）" in pdf_text(report)


# --- generation: once per period, again on request -----------------------------------------------------


def test_the_scheduled_job_makes_last_months_and_last_quarters_reports_once(city):
    with time_machine.travel(REPORT_AT, tick=False):
        first = periodic_reports_scheduled()
        again = periodic_reports_scheduled()
    assert [(r.period, r.year, r.number, r.jurisdiction_key) for r in first] == [
        ("month", 2026, 3, "all"),
        ("quarter", 2026, 1, "all"),
    ]
    assert [r.pk for r in again] == [r.pk for r in first]
    assert PeriodicReport.objects.count() == 2
    assert all(r.requested_by is None and r.generation == 1 for r in first)


def test_the_schedule_runs_the_job_daily_in_beijing_time():
    entry = settings.CELERY_BEAT_SCHEDULE["periodic-reports"]
    assert entry["task"] == "regulator.tasks.periodic_reports_scheduled_task"
    assert entry["schedule"].hour == {4} and entry["schedule"].minute == {10}
    assert settings.CELERY_TIMEZONE == "Asia/Shanghai"


def test_asking_again_returns_the_report_and_regenerating_adds_a_generation(city):
    inspector = UserFactory(role="regulator")
    first = made()
    assert made(requested_by=inspector).pk == first.pk
    second = made(requested_by=inspector, regenerate=True)
    assert second.pk != first.pk and second.generation == 2 and second.requested_by == inspector
    assert second.state == "done" and "第 2 次生成" in pdf_text(second) and inspector.username in pdf_text(second)
    assert PeriodicReport.objects.count() == 2 and PeriodicReportFile.objects.count() == 4


def test_a_failed_report_is_made_again_when_asked(city, monkeypatch):
    import regulator.reports.periodic_xlsx as xlsx

    def broken(report):
        raise ValueError("disk full")

    monkeypatch.setattr(xlsx, "periodic_report_xlsx", broken)
    failed = made()
    assert failed.state == "failed" and "disk full" in failed.detail and not failed.files.exists()
    monkeypatch.undo()
    again = made()
    assert again.pk != failed.pk and again.generation == 2 and again.state == "done"


def test_a_report_continues_from_its_last_step_after_its_worker_died(city):
    with time_machine.travel(REPORT_AT, tick=False):
        report = periodic_report_generate(jurisdiction=CITY, period=MARCH)
        assert periodic_report_step(report_id=report.pk) and periodic_report_step(report_id=report.pk)
    report.refresh_from_db()
    assert report.state == "running" and report.done == 2 and set(report.figures) == {"escrow", "filings"}
    escrow = report.figures["escrow"]
    with time_machine.travel("2026-04-01 04:20 +0800", tick=False):
        while periodic_report_step(report_id=report.pk):
            pass
    report.refresh_from_db()
    assert report.state == "done" and report.figures["escrow"] == escrow
    assert report.as_of == bj("2026-04-01 04:10")  # the moment of its first step
