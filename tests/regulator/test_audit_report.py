"""The regulator's audit report of one merchant (regulator.reports)."""

import io
import re
import uuid
from datetime import date, datetime, timedelta

import pypdf
import pytest
import time_machine
from reportlab.graphics import renderPDF
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.lineplots import LinePlot

from complaints.models import Complaint
from core import clock
from core.formatting import yuan
from escrow.selectors import ledger_verify
from escrow.services import ledger_check_run
from refunds.services import refund_request
from regulator.models import RiskAssessment
from regulator.reports.audit import audit_report_pdf
from regulator.reports.charts import monthly_chart, risk_score_chart
from regulator.reports.figures import report_escrow_figures, report_ledger_extract, report_monthly_figures
from regulator.reports.names import SIGNAL_NAMES
from regulator.selectors.risk import risk_history
from regulator.services.audit import audit_record
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

GYM = "朝阳健身工作室"
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=clock.BEIJING)  # when the report is generated
REASON = "连续三周无法提供课程，暂停售卡待查"


def at(moment):
    return time_machine.travel(moment, tick=False)


def pages_of(pdf: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [re.sub(r"\s*\n\s*", "", page.extract_text()) for page in reader.pages]


def text_of(pdf: bytes) -> str:
    return "".join(pages_of(pdf))


def signals(**values) -> list[dict]:
    """The ten signals of an assessment, each weighted 10, with ``values`` overriding a value."""
    return [
        {
            "name": name,
            "value": values.get(name, 0),
            "weight": 10,
            "contribution": 1.5,
            "explanation": {"zh-hans": f"{name} 的中文说明", "en": f"{name} explained"},
        }
        for name in SIGNAL_NAMES
    ]


def assess(merchant, when: datetime, score: int, level: str = "low", **values) -> RiskAssessment:
    return RiskAssessment.objects.create(
        merchant=merchant, computed_at=when, score=score, level=level, signals=signals(**values)
    )


def complaint(merchant, *, when: datetime, category: str, state: str = "open", description: str = "课程停了"):
    return Complaint.objects.create(
        merchant=merchant,
        source=Complaint.Source.HOTLINE,
        category=category,
        description=description,
        state=state,
        respond_by=when + timedelta(hours=48),
        created_at=when,
    )


@pytest.fixture
def gym(regulator):
    """A gym with three months of business: cards sold in March and April (Beijing), services used
    in April and May, a voluntary refund in May, three complaints, a freeze of its sales and three
    risk assessments."""
    gym = builders.merchant(name=GYM)
    pack = builders.session_pack(gym, price=100_000, sessions=10, refund_fee_bps=1000)
    stored = builders.stored_value(gym, price=90_000, face_value=100_000, unit_price=1_000)
    march = builders.paid_card(pack, at="2026-03-10 10:00 +0800")
    wallet = builders.paid_card(stored, at="2026-03-31 23:30 +0800")  # 15:30 UTC: March in Beijing
    april = builders.paid_card(pack, at="2026-04-01 00:30 +0800")  # 31 March in UTC: April in Beijing
    with at("2026-04-20 18:00 +0800"):
        use(march), use(march)  # 2 x 10,000
    with at("2026-05-05 18:00 +0800"):
        use(wallet, 10_000)  # 9,000
        use(april)  # 10,000
    with at("2026-05-20 12:00 +0800"):
        refund_request(consumer=march.consumer, card_id=march.pk, reason="voluntary")  # 80,000: fee 8,000
    complaint(gym, when=datetime(2026, 5, 1, 9, tzinfo=clock.BEIJING), category="service_unavailable")
    complaint(gym, when=datetime(2026, 5, 2, 9, tzinfo=clock.BEIJING), category="service_unavailable", state="overdue")
    complaint(gym, when=datetime(2026, 5, 3, 9, tzinfo=clock.BEIJING), category="refund_refused", state="closed")
    with at("2026-06-01 09:00 +0800"):
        audit_record(
            verb="freeze_sales",
            actor_id=regulator.pk,
            merchant_id=gym.pk,
            target=f"merchant:{gym.pk}",
            reason=REASON,
            changes={"sales_frozen": [False, True]},
        )
    assess(gym, datetime(2026, 4, 1, 1, 30, tzinfo=clock.BEIJING), 12)
    assess(gym, datetime(2026, 5, 1, 1, 30, tzinfo=clock.BEIJING), 41, "medium")
    assess(gym, datetime(2026, 6, 1, 1, 30, tzinfo=clock.BEIJING), 67, "high", escrow_outstanding=170_000)
    return gym


def test_report_holds_the_profile_risk_breakdown_complaints_actions_and_ledger(gym, regulator):
    with at(NOW):
        check = ledger_check_run()
        pdf = audit_report_pdf(merchant_id=gym.pk, generated_by=regulator)
    text = text_of(pdf)
    assert pdf.startswith(b"%PDF")
    assert "预付卡商户审计报告" in text
    assert GYM in text and gym.license_number in text and "朝阳区" in text and "健身" in text
    for name in SIGNAL_NAMES.values():
        assert name in text
    assert "escrow_outstanding 的中文说明" in text and yuan(170_000) in text  # the newest assessment's
    assert "评分 67 分" in text and "风险等级：高" in text
    assert ledger_verify()["head_hash"] in text
    assert "借贷平衡通过" in text and "哈希链完整通过" in text and check.ok
    assert f"核验分录数{check.entries:,}" in text.replace(" ", "")
    assert "投诉共 3 件：待答复 1 件，已答复 0 件，逾期未答复 1 件，已办结 1 件" in text
    assert REASON in text and "冻结售卡" in text and "售卡冻结：否 → 是" in text
    assert regulator.username in text and "2026年6月15日 10:00（北京时间）" in text
    pages = pages_of(pdf)
    assert all(
        f"第 {n} 页 / 共 {len(pages)} 页".replace(" ", "") in page.replace(" ", "")
        for n, page in enumerate(pages, start=1)
    )


def test_report_draws_the_score_history_and_the_monthly_sales_and_releases(gym, regulator):
    history = risk_history(merchant=gym)
    chart = risk_score_chart(history)
    plot = next(item for item in chart.contents if isinstance(item, LinePlot))
    assert [score for _, score in plot.data[0]] == [12, 41, 67]
    assert [round(day) for day, _ in plot.data[0]] == [0, 30, 61]
    assert renderPDF.drawToString(chart).startswith(b"%PDF")
    with at(NOW):
        months = report_monthly_figures(merchant=gym)
        bars = next(item for item in monthly_chart(months).contents if isinstance(item, VerticalBarChart))
        text = text_of(audit_report_pdf(merchant_id=gym.pk))
    assert bars.categoryAxis.categoryNames[-4:] == ["2026-03", "2026-04", "2026-05", "2026-06"]
    assert [row[-4:] for row in bars.data] == [[190_000, 100_000, 0, 0], [0, 20_000, 19_000, 0]]
    assert "风险评分走势（3 次评估）" in text and "售卡金额" in text and "服务划付金额" in text
    assert "2026年4月1日" in text and "2025年7月" in text  # the score chart's first day, the table's first month


def test_monthly_figures_count_sales_and_releases_by_beijing_month(gym):
    with at(NOW):
        months = report_monthly_figures(merchant=gym)
    assert len(months) == 12 and months[0].month == date(2025, 7, 1) and months[-1].month == date(2026, 6, 1)
    by_month = {row.month: (row.cards, row.sales, row.released) for row in months}
    assert by_month[date(2026, 3, 1)] == (2, 190_000, 0)  # the card paid 23:30 on 31 March is March's
    assert by_month[date(2026, 4, 1)] == (1, 100_000, 20_000)  # and the one at 00:30 on 1 April, April's
    assert by_month[date(2026, 5, 1)] == (0, 0, 19_000)  # the refund's fee is not a release
    assert sum(row.cards for row in months) == 3


def test_escrow_figures_add_up_to_what_was_sold(gym):
    figures = report_escrow_figures(merchant=gym)
    assert figures["sold"] == 290_000 and figures["sold_cards"] == 3
    assert figures["released"] == 20_000 + 8_000 + 9_000 + 10_000  # releases and the refund's fee
    assert figures["refunded"] == 72_000
    assert figures["escrow"] == 81_000 + 90_000 and figures["holding_cards"] == 2
    assert figures["sold"] == figures["escrow"] + figures["released"] + figures["refunded"]
    assert (figures["ledger_released"], figures["ledger_fees"]) == (39_000, 8_000)
    assert figures["available"] == 47_000 and figures["paid_out"] == 0
    # the outbox pays a refund after commit, which a test's transaction never reaches
    assert (figures["refunds"], figures["refunds_unpaid"]) == (1, 1)


def test_ledger_extract_lists_the_merchants_newest_entries_only(gym):
    other = builders.merchant()
    builders.paid_card(builders.session_pack(other), at="2026-06-01 10:00 +0800")
    lines = report_ledger_extract(merchant=gym)
    # newest first: the refund and its fee, 4 releases, 3 purchases (not the refund's payment: custody)
    assert [line.code for line in lines] == ["refund", "fee"] + ["release"] * 4 + ["purchase"] * 3
    assert [line.amount for line in lines] == [72_000, 8_000, 10_000, 9_000, 10_000, 10_000, 100_000, 90_000, 100_000]
    assert [line.created_at for line in lines] == sorted((line.created_at for line in lines), reverse=True)
    assert all(len(line.hash) == 64 for line in lines)
    assert len(report_ledger_extract(merchant=gym, limit=4)) == 4


def test_report_of_a_merchant_with_no_history_says_so(regulator):
    quiet = builders.merchant(name="新开业的洗衣店", category="laundry")
    text = text_of(audit_report_pdf(merchant_id=quiet.pk, generated_by=regulator))
    assert "新开业的洗衣店" in text and quiet.license_number in text
    assert "尚无风险评估记录" in text
    assert "没有投诉记录" in text and "没有监管操作记录" in text
    assert "账本中没有涉及该商户的分录" in text
    assert f"累计售卡 {yuan(0)}" in text and "尚无全账核验记录" in text


def test_report_over_http_is_for_the_regulator_only(gym):
    url = f"/api/v1/regulator/merchants/{gym.pk}/report.pdf"
    response = client_for(UserFactory(role="regulator")).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert GYM in text_of(response.content)
    for role in ("merchant", "consumer"):
        denied = client_for(UserFactory(role=role)).get(url)
        assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert client_for(gym.user).get(url).status_code == 403  # not even its own
    from rest_framework.test import APIClient

    assert APIClient().get(url).status_code == 401


@pytest.mark.parametrize("merchant_id", [str(uuid.uuid4()), "not-a-merchant"], ids=["unknown-uuid", "not-a-uuid"])
def test_report_of_an_unknown_merchant_is_404(regulator, merchant_id):
    response = client_for(regulator).get(f"/api/v1/regulator/merchants/{merchant_id}/report.pdf")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_report_prints_the_newest_kept_ledger_check_not_a_fresh_one(gym, regulator):
    """A full verification reads the whole journal: the report prints the newest kept check, or says
    there is none yet, and always the head hash of now."""
    text = text_of(audit_report_pdf(merchant_id=gym.pk, generated_by=regulator))
    assert "尚无全账核验记录" in text and ledger_verify()["head_hash"] in text
    with at("2026-06-10 03:20 +0800"):
        ledger_check_run()
    text = text_of(audit_report_pdf(merchant_id=gym.pk, generated_by=regulator))
    assert "尚无全账核验记录" not in text and "2026年6月10日 03:20" in text
