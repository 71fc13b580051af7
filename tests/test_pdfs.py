"""Every PDF the platform serves renders anywhere: it embeds (a subset of) its CJK font, numbers its
pages and gives the platform's contact; the audit report's monthly chart is readable; a first
statement's period starts on the merchant's first day, not at the settlement run's epoch."""

import io
import re
from datetime import date, datetime

import pypdf
import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.shapes import Rect, String

import core.pdf
from consumers.contract import card_contract_pdf
from core import clock
from merchants.services.settlement import settlement_run
from refunds.statement import settlement_statement_pdf
from regulator.charts import Series, current_month_note, line_chart
from regulator.reports.audit import audit_report_pdf
from regulator.reports.charts import monthly_chart
from regulator.reports.figures import MonthFigures
from regulator.reports.periods import MONTH, Period
from regulator.selectors.jurisdiction import CITY
from regulator.services.periodic_reports import periodic_report_generate, periodic_report_step
from tests.cards import builders
from tests.cards.test_redemptions import use

pytestmark = pytest.mark.django_db

CONTACT = "测试运营中心 电话 010-88886666 邮箱 ops@example.test"


def at(moment):
    return time_machine.travel(moment, tick=False)


def fonts_of(pdf: bytes) -> list[dict]:
    """The fonts every page of ``pdf`` uses, each as its PDF font dictionary (descendants resolved)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    fonts = []
    for page in reader.pages:
        resources = page["/Resources"].get_object()
        for font in resources["/Font"].get_object().values():
            font = font.get_object()
            fonts.append(font)
    return fonts


def texts_of(pdf: bytes) -> list[str]:
    return [re.sub(r"\s*\n\s*", "", page.extract_text()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture
def pdfs(regulator):
    """The card contract, the first settlement statement and the audit report of one gym that
    opened on 20 February 2026 (Beijing), and the city's periodic report of February."""
    with override_settings(PLATFORM_CONTACT=CONTACT):
        with at("2026-02-20 09:00 +0800"):
            gym = builders.merchant(name="朝阳健身工作室")
            stored = builders.stored_value(gym, price=90_000, face_value=100_000, unit_price=1_000)
        card = builders.paid_card(stored, at="2026-02-20 10:00 +0800")
        with at("2026-03-02 15:00 +0800"):
            use(card, 12_345)
        with at("2026-03-03 02:00 +0800"):
            settlement = settlement_run(day=date(2026, 3, 2)).settlements.select_related("merchant").get()
        with at("2026-03-05 10:00 +0800"):
            report = periodic_report_generate(jurisdiction=CITY, period=Period(MONTH, 2026, 2))
            while periodic_report_step(report_id=report.pk):
                pass
            yield {
                "contract": card_contract_pdf(card=card),
                "statement": settlement_statement_pdf(settlement=settlement),
                "audit report": audit_report_pdf(merchant_id=gym.pk, generated_by=regulator),
                "periodic report": bytes(report.files.get(kind="pdf").content),
            }


def test_every_pdf_embeds_a_subset_of_its_truetype_cjk_font(pdfs):
    for name, pdf in pdfs.items():
        fonts = fonts_of(pdf)
        assert fonts, name
        cjk = [font for font in fonts if "WenQuanYi" in str(font["/BaseFont"])]
        assert cjk, (name, [font["/BaseFont"] for font in fonts])
        for font in cjk:
            # A subset ("AAAAAA+WenQuanYiZenHei-0": reportlab's subsets of 256 glyphs), its TrueType
            # program in the file.
            assert re.fullmatch(r"/[A-Z]{6}\+WenQuanYiZenHei(-\d+)?", str(font["/BaseFont"])), font["/BaseFont"]
            assert "/FontFile2" in font["/FontDescriptor"].get_object(), name
        assert not any("STSong" in str(font["/BaseFont"]) for font in fonts), name
        assert b"STSong-Light" not in pdf, name


def test_every_page_of_every_pdf_is_numbered_and_gives_the_platforms_contact(pdfs):
    for name, pdf in pdfs.items():
        pages = texts_of(pdf)
        for number, text in enumerate(pages, start=1):
            assert f"第{number}页/共{len(pages)}页" in text.replace(" ", ""), (name, number)
            assert CONTACT.replace(" ", "") in text.replace(" ", ""), (name, number)


def test_a_first_statement_starts_on_the_merchants_first_day(pdfs):
    text = "".join(texts_of(pdfs["statement"]))
    assert "2000" not in text
    assert "2026年2月20日 00:00" in text.replace("\u3000", " ") or "2026-02-20" in text


def test_no_font_is_a_clear_configuration_error_naming_the_package(monkeypatch, tmp_path):
    with (
        override_settings(PDF_FONT_PATH=str(tmp_path / "missing.ttf")),
        pytest.raises(ImproperlyConfigured, match="fonts-wqy-zenhei"),
    ):
        core.pdf.use_font()
    monkeypatch.setattr(core.pdf, "FONT_CANDIDATES", ((str(tmp_path / "none.ttc"), "fonts-wqy-zenhei"),))
    with (
        override_settings(PDF_FONT_PATH=""),
        pytest.raises(ImproperlyConfigured, match="apt-get install fonts-wqy-zenhei"),
    ):
        core.pdf.document(io.BytesIO(), title="t", subject="s")


def _month(day: date, sales: int, released: int) -> MonthFigures:
    return MonthFigures(month=day, cards=1 if sales else 0, sales=sales, released=released)


def _shapes(group):
    for shape in group.contents:
        yield from _shapes(shape) if hasattr(shape, "contents") else [shape]


def test_the_monthly_chart_starts_at_data_keeps_small_bars_and_marks_the_partial_month():
    months = [_month(date(2025, m, 1), 0, 0) for m in range(7, 13)] + [
        _month(date(2026, 1, 1), 0, 0),
        _month(date(2026, 2, 1), 0, 0),
        _month(date(2026, 3, 1), 5_000_000, 300),
        _month(date(2026, 4, 1), 4_000_000, 2_000_000),
        _month(date(2026, 5, 1), 3_000_000, 1_500_000),
        _month(date(2026, 6, 1), 400_000, 100_000),
    ]
    with at(datetime(2026, 6, 15, 10, 0, tzinfo=clock.BEIJING)):
        drawing = monthly_chart(months)
    chart = next(item for item in drawing.contents if isinstance(item, VerticalBarChart))
    assert chart.categoryAxis.categoryNames == ["2026-03", "2026-04", "2026-05", "2026-06"]
    assert chart.valueAxis.labelTextFormat(100_000) == "¥1,000"
    bars = [shape for shape in _shapes(chart.draw()) if isinstance(shape, Rect) and shape.width < 20 * 72 / 25.4]
    assert len(bars) == 8 and min(bar.height for bar in bars) >= 1.2 * 72 / 25.4 - 0.01  # ¥3 is still seen
    dashed = [bar for bar in bars if bar.strokeDashArray]
    assert len(dashed) == 2  # June's two bars
    notes = [item.text for item in drawing.contents if isinstance(item, String)]
    assert any("本月截至6月15日" in note for note in notes)


def test_the_web_month_chart_dashes_the_partial_month_and_says_to_which_day():
    with at(datetime(2026, 6, 15, 10, 0, tzinfo=clock.BEIJING)):
        note = current_month_note("2026-06")
        assert current_month_note("2026-05") == ""
    assert note and "15" in note
    svg = line_chart(
        ["2026-04", "2026-05", "2026-06"],
        [Series("售卡", [300, 400, 90])],
        chart_id="chart-test",
        title="t",
        partial=note,
    )
    assert 'class="partial"' in svg and 'stroke-dasharray="5 4"' in svg and note in svg
    with at(datetime(2026, 6, 30, 22, 0, tzinfo=clock.BEIJING)):
        assert current_month_note("2026-06") == ""  # the month's last day: whole
