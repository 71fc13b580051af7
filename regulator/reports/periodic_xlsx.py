"""The periodic report as an XLSX workbook, from its stored figures: a sheet per section, Chinese
headers, money as numbers of yuan (exact ``Decimal`` from integer fen) formatted ``#,##0.00``,
rates as numbers formatted as percentages, written by openpyxl's write-only workbook as the
exports are (``regulator.exports``).

Sheets: 概览 (the report's particulars and headline figures), 托管资金（按区）, 托管资金（按行业）,
托管资金（明细） (district × trade), 备案, 投诉, 退款, 风险商户.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

from regulator.exports import yuan
from regulator.models import PeriodicReport
from regulator.reports.names import COMPLAINT_CATEGORY_NAMES, FILING_STATE_NAMES, LEVEL_NAMES, REFUND_REASON_NAMES
from regulator.reports.periodic_figures import COMPLAINT_FIELDS, ESCROW_FIELDS, REFUND_FIELDS, escrow_by, totals
from regulator.reports.periodic_pdf import report_header, signals_text
from regulator.reports.periodic_text import category_label, district_label, rate_tenths

MONEY_FORMAT = "#,##0.00"
RATE_FORMAT = "0.0%"
TEXT, MONEY, NUMBER, RATE = "text", "money", "number", "rate"


def _rate(part: int, whole: int) -> Decimal | None:
    tenths = rate_tenths(part, whole)
    return None if tenths is None else Decimal(tenths) / 1000


class _Book:
    """A write-only workbook whose sheets take a header row and rows of (value, kind) cells."""

    def __init__(self) -> None:
        from openpyxl import Workbook
        from openpyxl.styles import Font

        self.book = Workbook(write_only=True)
        self.bold = Font(bold=True)

    def sheet(self, title: str, header: list[str], rows: list[list[tuple[Any, str]]], widths: list[int]) -> None:
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.utils import get_column_letter

        sheet = self.book.create_sheet(title)
        for number, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(number)].width = width
        cells = []
        for text in header:
            cell = WriteOnlyCell(sheet, value=text)
            cell.font = self.bold
            cells.append(cell)
        sheet.append(cells)
        for row in rows:
            line: list[Any] = []
            for value, kind in row:
                if value is not None and kind in (MONEY, RATE):
                    cell = WriteOnlyCell(sheet, value=value)
                    cell.number_format = MONEY_FORMAT if kind == MONEY else RATE_FORMAT
                    line.append(cell)
                else:
                    line.append(value)
            sheet.append(line)

    def bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.book.save(buffer)
        return buffer.getvalue()


_ESCROW_HEADER = [
    "期初余额（元）",
    "存入托管（元）",
    "划付商户（元）",
    "退还消费者（元）",
    "更正（元）",
    "期末余额（元）",
]


def _escrow_cells(line: dict[str, Any]) -> list[tuple[Any, str]]:
    money = [(yuan(line[name]), MONEY) for name in ESCROW_FIELDS if name != "cards_sold"]
    return [*money, (line["cards_sold"], NUMBER)]


def _overview(header: dict[str, str], figures: dict[str, Any]) -> list[list[tuple[Any, str]]]:
    escrow = totals(figures["escrow"], ESCROW_FIELDS)
    complaints = totals(figures["complaints"], COMPLAINT_FIELDS)
    refunds = totals(figures["refunds"], REFUND_FIELDS)
    filings = figures["filings"]
    rows: list[tuple[str, Any, str]] = [
        ("报告", header["title"], TEXT),
        ("统计期间", header["period"], TEXT),
        ("辖区", header["jurisdiction"], TEXT),
        ("生成人", header["requested_by"], TEXT),
        ("生成时间", header["as_of"], TEXT),
        ("期初托管资金余额（元）", yuan(escrow["held_start"]), MONEY),
        ("期内存入托管（元）", yuan(escrow["paid_in"]), MONEY),
        ("期内划付商户（元）", yuan(escrow["released"]), MONEY),
        ("期内退还消费者（元）", yuan(escrow["refunded"]), MONEY),
        ("期末托管资金余额（元）", yuan(escrow["held_end"]), MONEY),
        ("期内售卡张数", escrow["cards_sold"], NUMBER),
        ("期内新增应备案（家）", filings["required"], NUMBER),
        ("期内提交备案（件）", filings["submitted"], NUMBER),
        ("投诉件数", complaints["count"], NUMBER),
        ("投诉按时答复率", _rate(complaints["on_time"], complaints["count"] - complaints["pending"]), RATE),
        ("退款笔数", refunds["count"], NUMBER),
        ("退款金额（元）", yuan(refunds["amount"]), MONEY),
        ("退款按期支付率", _rate(refunds["on_time"], refunds["count"] - refunds["pending"]), RATE),
    ]
    if header["partial"]:
        rows.insert(5, ("说明", header["partial"], TEXT))
    return [[(label, TEXT), (value, kind)] for label, value, kind in rows]


def periodic_report_xlsx(report: PeriodicReport) -> bytes:
    """The report as an XLSX workbook, from its figures (every section computed)."""
    header = report_header(report)
    figures = report.figures
    book = _Book()
    book.sheet("概览", ["项目", "数值"], _overview(header, figures), [28, 60])

    escrow = figures["escrow"]
    total = totals(escrow, ESCROW_FIELDS)
    total_row = [("合计", TEXT), *_escrow_cells(total)]
    for title, by, label in (
        ("托管资金（按区）", "district", district_label),
        ("托管资金（按行业）", "category", category_label),
    ):
        rows = [[(label(line[by]), TEXT), *_escrow_cells(line)] for line in escrow_by(escrow, by)]
        book.sheet(
            title,
            ["所在区" if by == "district" else "行业", *_ESCROW_HEADER, "售卡张数"],
            [*rows, total_row],
            [16, 18, 18, 18, 18, 14, 18, 12],
        )
    book.sheet(
        "托管资金（明细）",
        ["所在区", "行业", *_ESCROW_HEADER, "售卡张数"],
        [
            [(district_label(line["district"]), TEXT), (category_label(line["category"]), TEXT), *_escrow_cells(line)]
            for line in escrow
        ],
        [16, 12, 18, 18, 18, 18, 14, 18, 12],
    )

    filings = figures["filings"]
    filing_rows = [
        [("期内新增应备案（家）", TEXT), (filings["required"], NUMBER)],
        [("期内提交备案（件）", TEXT), (filings["submitted"], NUMBER)],
        [("期内审核通过（件）", TEXT), (filings["accepted"], NUMBER)],
        [("备案期限届满于本期（件）", TEXT), (filings["due"], NUMBER)],
        [("其中逾期未提交（件）", TEXT), (filings["missed"], NUMBER)],
        *[
            [(f"期内新增应备案中现为“{FILING_STATE_NAMES.get(state, state)}”（家）", TEXT), (n, NUMBER)]
            for state, n in filings["by_state"].items()
        ],
    ]
    book.sheet("备案", ["项目", "数量"], filing_rows, [44, 10])

    def complaint_row(label: str, line: dict[str, Any]) -> list[tuple[Any, str]]:
        return [
            (label, TEXT),
            *[(line[name], NUMBER) for name in ("count", "hotline", "on_time", "answered_late", "unanswered_late")],
            (line["pending"], NUMBER),
            (_rate(line["on_time"], line["count"] - line["pending"]), RATE),
        ]

    complaints = figures["complaints"]
    book.sheet(
        "投诉",
        ["投诉类别", "件数", "其中热线", "按时答复", "逾期答复", "逾期未答复", "尚在期限内", "按时答复率"],
        [
            *[complaint_row(COMPLAINT_CATEGORY_NAMES.get(x["category"], x["category"]), x) for x in complaints],
            complaint_row("合计", totals(complaints, COMPLAINT_FIELDS)),
        ],
        [16, 8, 10, 10, 10, 12, 12, 12],
    )

    def refund_row(label: str, line: dict[str, Any]) -> list[tuple[Any, str]]:
        return [
            (label, TEXT),
            (line["count"], NUMBER),
            (yuan(line["amount"]), MONEY),
            (yuan(line["fee"]), MONEY),
            *[(line[name], NUMBER) for name in ("on_time", "paid_late", "unpaid_late", "pending", "failed")],
            (_rate(line["on_time"], line["count"] - line["pending"]), RATE),
        ]

    refunds = figures["refunds"]
    book.sheet(
        "退款",
        [
            "退款原因",
            "笔数",
            "退款金额（元）",
            "手续费（元）",
            "按期支付",
            "逾期支付",
            "逾期未付",
            "尚在期限内",
            "支付失败",
            "按期支付率",
        ],
        [
            *[refund_row(REFUND_REASON_NAMES.get(x["reason"], x["reason"]), x) for x in refunds],
            refund_row("合计", totals(refunds, REFUND_FIELDS)),
        ],
        [16, 8, 16, 14, 10, 10, 10, 12, 10, 12],
    )

    book.sheet(
        "风险商户",
        ["序号", "商户名称", "统一社会信用代码", "所在区", "行业", "风险评分", "风险等级", "主要风险信号"],
        [
            [
                (rank, NUMBER),
                (line["name"], TEXT),
                (line["license_number"], TEXT),
                (district_label(line["district"]), TEXT),
                (category_label(line["category"]), TEXT),
                (line["score"], NUMBER),
                (LEVEL_NAMES.get(line["level"], line["level"]), TEXT),
                (signals_text(line["signals"]), TEXT),
            ]
            for rank, line in enumerate(figures["riskiest"], start=1)
        ],
        [6, 30, 22, 10, 10, 10, 10, 60],
    )
    return book.bytes()
