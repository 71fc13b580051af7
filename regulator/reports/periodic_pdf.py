"""The periodic report as a PDF (单用途预付卡监管定期报告), written from a report's stored figures
alone (``PeriodicReport.figures``, see ``regulator.reports.periodic_figures``).

What it holds, in order: the period (Beijing time), the jurisdiction and who asked for it; an
overview of the headline figures; the escrow, with a chart of what is held at the period's end by
district and one of the money paid in, released and refunded by trade, and both tables with the
ledger's check ``held at the start + paid in - released - refunded (+ corrections) = held at the
end``; the filings; the complaints and how many were answered by their deadline; the refunds and how
many were paid by ``due_by``; the riskiest merchants with their largest signals. The layout is the
platform's PDF foundation (``core.pdf``), as the audit report's; money is yuan from integer fen.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, LongTable, Paragraph, Spacer, TableStyle

from core.formatting import beijing_time, yuan
from core.pdf import BODY, HEADING, NOTE, SUBTITLE, WARNING, WIDTH, document, p, page_canvas, pairs_table, ruled_table
from core.pdf import TITLE as TITLE_STYLE
from regulator.models import PeriodicReport
from regulator.reports.audit import signal_value_text
from regulator.reports.charts import escrow_by_district_chart, flows_by_category_chart
from regulator.reports.names import (
    COMPLAINT_CATEGORY_NAMES,
    FILING_STATE_NAMES,
    LEVEL_NAMES,
    PERIODIC_TITLE,
    REFUND_REASON_NAMES,
    SIGNAL_NAMES,
)
from regulator.reports.periodic_figures import (
    COMPLAINT_FIELDS,
    ESCROW_FIELDS,
    REFUND_FIELDS,
    RISKIEST,
    escrow_by,
    totals,
)
from regulator.reports.periodic_text import (
    category_label,
    district_label,
    jurisdiction_label,
    money,
    rate,
    requester_label,
)
from regulator.reports.periods import Period

_CELL = ParagraphStyle("periodic_cell", parent=BODY, fontSize=8, leading=10.5)


def _cell(text: str) -> Paragraph:
    return Paragraph(escape(text), _CELL)


def _tight(table: LongTable) -> LongTable:
    """The table with 2-3 pt of side padding instead of 6: wide amounts keep to their column."""
    table.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 2), ("RIGHTPADDING", (0, 0), (-1, -1), 3)]))
    return table


def report_header(report: PeriodicReport) -> dict[str, str]:
    """The words every rendering of the report opens with: title, period, jurisdiction, who, when."""
    period = Period(report.period, report.year, report.number)
    as_of = report.as_of or report.created_at
    partial = not period.over_at(as_of)
    return {
        "title": f"{PERIODIC_TITLE}（{period.label}）",
        "period": f"{period.label}（{period.span}，北京时间）",
        "jurisdiction": jurisdiction_label(report.districts, report.categories),
        "requested_by": requester_label(report.requested_by.get_username() if report.requested_by else None),
        "as_of": beijing_time(as_of),
        "generation": f"第 {report.generation} 次生成" if report.generation > 1 else "",
        "partial": f"本期尚未结束，数据截至 {beijing_time(as_of)}。" if partial else "",
        "slug": period.slug,
    }


def _overview(figures: dict[str, Any]) -> list[Flowable]:
    escrow = totals(figures["escrow"], ESCROW_FIELDS)
    complaints = totals(figures["complaints"], COMPLAINT_FIELDS)
    refunds = totals(figures["refunds"], REFUND_FIELDS)
    filings = figures["filings"]
    riskiest = figures["riskiest"]
    known = complaints["count"] - complaints["pending"]
    due = refunds["count"] - refunds["pending"]
    pairs = [
        ("期末托管资金余额", yuan(escrow["held_end"])),
        ("期初托管资金余额", yuan(escrow["held_start"])),
        ("期内存入托管", f"{yuan(escrow['paid_in'])}（售卡 {escrow['cards_sold']:,} 张）"),
        ("期内划付商户", yuan(escrow["released"])),
        ("期内退还消费者", yuan(escrow["refunded"])),
        ("备案", f"新增应备案 {filings['required']} 家，期内提交 {filings['submitted']} 件"),
        ("投诉", f"{complaints['count']:,} 件，按时答复率 {rate(complaints['on_time'], known)}"),
        ("退款", f"{refunds['count']:,} 笔 {yuan(refunds['amount'])}，按期支付率 {rate(refunds['on_time'], due)}"),
        ("风险最高的商户", f"{riskiest[0]['name']}（{riskiest[0]['score']} 分）" if riskiest else "无评估记录"),
    ]
    return [pairs_table(pairs)]


_ESCROW_HEADER = ["期初余额（元）", "存入（元）", "划付商户（元）", "退还（元）", "期末余额（元）", "售卡张数"]


def _escrow_rows(lines: list[dict[str, Any]], name: str, label) -> list[list[Any]]:
    return [
        [
            _cell(label(line[name])),
            money(line["held_start"]),
            money(line["paid_in"]),
            money(line["released"]),
            money(line["refunded"]),
            money(line["held_end"]),
            f"{line['cards_sold']:,}",
        ]
        for line in lines
    ]


def _escrow(rows: list[dict[str, Any]]) -> list[Flowable]:
    if not rows:
        return [p("本辖区在本期没有托管资金，也没有资金进出。")]
    total = totals(rows, ESCROW_FIELDS)
    total_row = [
        "合计",
        money(total["held_start"]),
        money(total["paid_in"]),
        money(total["released"]),
        money(total["refunded"]),
        money(total["held_end"]),
        f"{total['cards_sold']:,}",
    ]
    # Room for ¥9,999,999,999.99 in a money column (tighter padding than the shared table's).
    widths = [22 * mm] + [(WIDTH - 37 * mm) / 5] * 5 + [15 * mm]
    districts = escrow_by(rows, "district")
    categories = escrow_by(rows, "category")
    expected = total["held_start"] + total["paid_in"] - total["released"] - total["refunded"] + total["corrected"]
    check = (
        f"核对：期初 {yuan(total['held_start'])} + 存入 {yuan(total['paid_in'])} - 划付商户 "
        f"{yuan(total['released'])} - 退还 {yuan(total['refunded'])}"
        + (f" + 更正 {yuan(total['corrected'])}" if total["corrected"] else "")
        + f" = 期末 {yuan(total['held_end'])}，"
    )
    return [
        escrow_by_district_chart([(district_label(line["district"]), line["held_end"]) for line in districts]),
        p("按区", HEADING),
        _tight(
            ruled_table(
                ["所在区", *_ESCROW_HEADER],
                [*_escrow_rows(districts, "district", district_label), total_row],
                widths,
                right=1,
                totals=1,
            )
        ),
        p("按行业", HEADING),
        KeepTogether(
            [
                flows_by_category_chart(
                    [
                        (category_label(line["category"]), line["paid_in"], line["released"], line["refunded"])
                        for line in categories
                    ]
                ),
                Spacer(0, 2 * mm),
            ]
        ),
        _tight(
            ruled_table(
                ["行业", *_ESCROW_HEADER],
                [*_escrow_rows(categories, "category", category_label), total_row],
                widths,
                right=1,
                totals=1,
            )
        ),
        Spacer(0, 1.5 * mm),
        p(check + "相符。", NOTE) if expected == total["held_end"] else p(check + "不符，请核查账本。", WARNING),
        p(
            "余额为北京时间期初、期末时刻各卡托管账户的余额，由账本分录推算；存入为购卡付款，划付商户含服务划付与"
            "退款手续费，退还为退卡退款；售卡张数为期内付款的卡。",
            NOTE,
        ),
    ]


def _filings(filings: dict[str, Any]) -> list[Flowable]:
    pairs = [
        ("期内新增应备案", f"{filings['required']} 家"),
        ("期内提交备案", f"{filings['submitted']} 件"),
        ("期内审核通过", f"{filings['accepted']} 件"),
        ("备案期限届满于本期", f"{filings['due']} 件"),
        ("其中逾期未提交", f"{filings['missed']} 件"),
    ]
    by_state = filings["by_state"]
    rows = [[FILING_STATE_NAMES.get(state, state), str(n)] for state, n in by_state.items()]
    rows.append(["合计", str(sum(by_state.values()))])
    return [
        pairs_table(pairs),
        p("期内新增应备案的商户，其备案现状", HEADING),
        ruled_table(["备案状态", "家数"], rows, [WIDTH - 40 * mm, 40 * mm], right=1, totals=1),
    ]


def _complaints(lines: list[dict[str, Any]]) -> list[Flowable]:
    if not lines:
        return [p("本期没有收到投诉。")]

    def row(label: str, line: dict[str, Any]) -> list[Any]:
        known = line["count"] - line["pending"]
        return [
            _cell(label),
            str(line["count"]),
            str(line["hotline"]),
            str(line["on_time"]),
            str(line["answered_late"]),
            str(line["unanswered_late"]),
            str(line["pending"]),
            rate(line["on_time"], known),
        ]

    rows = [row(COMPLAINT_CATEGORY_NAMES.get(line["category"], line["category"]), line) for line in lines]
    total = totals(lines, COMPLAINT_FIELDS)
    rows.append(row("合计", total))
    widths = [WIDTH - 7 * 19 * mm] + [19 * mm] * 7
    header = ["投诉类别", "件数", "其中热线", "按时答复", "逾期答复", "逾期未答复", "尚在期限内", "按时答复率"]
    known = total["count"] - total["pending"]
    return [
        p(
            f"本期收到投诉 {total['count']} 件，已到答复期限或已答复的 {known} 件中按时答复 {total['on_time']} 件，"
            f"按时答复率 {rate(total['on_time'], known)}；逾期 {total['answered_late'] + total['unanswered_late']} 件"
            f"（逾期答复 {total['answered_late']} 件，逾期未答复 {total['unanswered_late']} 件）。"
        ),
        Spacer(0, 2 * mm),
        ruled_table(header, rows, widths, right=1, totals=1),
        Spacer(0, 1.5 * mm),
        p("按时答复率 = 按时答复 ÷（件数 - 尚在期限内）；期限按生成时刻判断。", NOTE),
    ]


def _refunds(lines: list[dict[str, Any]]) -> list[Flowable]:
    if not lines:
        return [p("本期没有退款申请。")]

    def row(label: str, line: dict[str, Any]) -> list[Any]:
        due = line["count"] - line["pending"]
        return [
            _cell(label),
            str(line["count"]),
            money(line["amount"]),
            str(line["on_time"]),
            str(line["paid_late"]),
            str(line["unpaid_late"]),
            str(line["pending"]),
            rate(line["on_time"], due),
        ]

    rows = [row(REFUND_REASON_NAMES.get(line["reason"], line["reason"]), line) for line in lines]
    total = totals(lines, REFUND_FIELDS)
    rows.append(row("合计", total))
    widths = [WIDTH - 28 * mm - 6 * 19 * mm, 15 * mm, 13 * mm + 19 * mm] + [19 * mm] * 5
    header = ["退款原因", "笔数", "退款金额（元）", "按期支付", "逾期支付", "逾期未付", "尚在期限内", "按期支付率"]
    due = total["count"] - total["pending"]
    story: list[Flowable] = [
        p(
            f"本期申请退款 {total['count']} 笔，金额 {yuan(total['amount'])}（另扣手续费 {yuan(total['fee'])}）；"
            f"已到支付期限或已支付的 {due} 笔中按期支付 {total['on_time']} 笔，"
            f"按期支付率 {rate(total['on_time'], due)}；"
            f"逾期 {total['paid_late'] + total['unpaid_late']} 笔。"
        ),
        Spacer(0, 2 * mm),
        ruled_table(header, rows, widths, right=1, totals=1),
    ]
    if total["failed"]:
        story.append(p(f"其中 {total['failed']} 笔退款支付失败，待运营人员重新发送。", WARNING))
    story.append(
        p("按期支付指在应付期限（申请后按规则计算）前支付；按期支付率 = 按期支付 ÷（笔数 - 尚在期限内）。", NOTE)
    )
    return story


def signals_text(signals: list[dict[str, Any]]) -> str:
    """A merchant's largest signals in words: ``逾期未答复投诉（3 件）；售卡激增（2.5 倍）``."""
    return (
        "；".join(
            f"{SIGNAL_NAMES.get(signal['name'], '其他信号')}（{signal_value_text(signal['name'], signal['value'])}）"
            for signal in signals
        )
        or "无"
    )


def _riskiest(lines: list[dict[str, Any]], cutoff: datetime) -> list[Flowable]:
    if not lines:
        return [p(f"截至 {beijing_time(cutoff)}，本辖区的商户尚无风险评估记录。")]
    rows = [
        [
            str(rank),
            _cell(line["name"]),
            _cell(f"{district_label(line['district'])} · {category_label(line['category'])}"),
            f"{line['score']}（{LEVEL_NAMES.get(line['level'], line['level'])}）",
            _cell(signals_text(line["signals"])),
        ]
        for rank, line in enumerate(lines, start=1)
    ]
    widths = [10 * mm, 40 * mm, 30 * mm, 22 * mm, WIDTH - 102 * mm]
    return [
        ruled_table(["序号", "商户", "所在区 · 行业", "风险评分", "主要风险信号"], rows, widths, right=9),
        Spacer(0, 1.5 * mm),
        p(f"按各商户在 {beijing_time(cutoff)} 前最近一次风险评估的评分排列；主要风险信号为贡献分最高的信号。", NOTE),
    ]


def periodic_report_pdf(report: PeriodicReport) -> bytes:
    """The report as an A4 PDF, from its figures (every section computed)."""
    header = report_header(report)
    figures = report.figures
    cutoff = min(report.ends_at, report.as_of or report.ends_at)
    buffer = io.BytesIO()
    doc = document(buffer, title=header["title"], subject=f"{header['jurisdiction']} {header['period']}")
    made = f"由 {escape(header['requested_by'])} 于 {header['as_of']} 生成" + (
        f"（{header['generation']}）" if header["generation"] else ""
    )
    story: list[Flowable] = [
        p(PERIODIC_TITLE, TITLE_STYLE),
        p(f"{header['period']}　辖区：{escape(header['jurisdiction'])}", SUBTITLE),
        p(made, SUBTITLE),
        Spacer(0, 4 * mm),
    ]
    if header["partial"]:
        story.append(p(header["partial"], WARNING))
    story += [
        p("一、概览", HEADING),
        *_overview(figures),
        p("二、托管资金（按区、按行业）", HEADING),
        *_escrow(figures["escrow"]),
        p("三、备案", HEADING),
        *_filings(figures["filings"]),
        p("四、投诉及答复时效", HEADING),
        *_complaints(figures["complaints"]),
        p("五、退款及支付时效", HEADING),
        *_refunds(figures["refunds"]),
        p(f"六、风险最高的商户（前 {RISKIEST} 名）", HEADING),
        *_riskiest(figures["riskiest"], cutoff),
        Spacer(0, 4 * mm),
        p(
            f"本报告{made}。统计期间为{header['period']}，按北京时间划分；金额以人民币元列示，由以分为单位的整数"
            "记录换算；投诉答复和退款支付的时效按生成时刻判断。",
            NOTE,
        ),
    ]
    footer = f"{PERIODIC_TITLE}　{header['jurisdiction']}　{header['slug']}"
    doc.build(story, canvasmaker=page_canvas(footer))
    return buffer.getvalue()
