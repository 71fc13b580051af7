"""The regulator's audit report on one merchant as a PDF (预付卡商户审计报告; API.md, Regulator:
``GET /api/v1/regulator/merchants/{id}/report.pdf``).

What the report holds, in order:

1. the merchant's profile and licence, its status and closure dates, the regulator's flags and
   freezes and the public risk warning;
2. the newest risk assessment, signal by signal (value, weight, contribution and the Chinese
   explanation that ``regulator.services.risk`` stored with it), and a chart of the score over time;
3. a chart of the last 12 months' card sales (cards' ``paid_at`` and ``price``) against the releases
   credited to the merchant's settlement account (the journal's ``release`` entries), both summed by
   Beijing month in SQL;
4. the escrow figures: money still held on the cards that hold escrow, released, refunded, paid out
   and available, with the card invariant ``sold = escrow + released + refunded`` checked;
5. the complaints, counted by category and state, and the latest of them;
6. the audit log of the merchant, newest first;
7. a ledger extract: the newest journal entries touching the merchant's settlement account or its
   cards' escrow accounts, with their hash prefixes, the heads of their chains, the ledger's head
   hash now, and the newest full verification of the ledger (``escrow.models.LedgerCheck``, kept by
   the nightly job and the regulator's "verify now": a verification reads the whole journal, far
   too much work for one report).

Every read is one aggregate or one bounded query; no query runs per row. The layout is the
PDF foundation the settlement statement uses too (``core.pdf``: the embedded CJK font, the A4
template, the ruled tables and "第 n 页 / 共 N 页" in every page's footer); money is integer fen
formatted without floats, times are Beijing time. A merchant
with no assessment, no card and no complaint gets the same report, each section saying so.
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any
from xml.sax.saxutils import escape

from django.utils import translation
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer

from complaints.models import Complaint
from core import clock
from core.formatting import beijing_date, beijing_datetime, beijing_time, yuan
from core.pdf import BODY, HEADING, NOTE, SUBTITLE, WARNING, WIDTH, document, p, page_canvas, pairs_table, ruled_table
from core.pdf import TITLE as TITLE_STYLE
from escrow.models import ChainHead, LedgerCheck
from escrow.selectors import heads_hash
from merchants.models import Merchant
from merchants.registry import district_name
from regulator.models import AuditEvent, RiskAssessment
from regulator.reports.charts import monthly_chart, partial_day, risk_score_chart
from regulator.reports.figures import (
    ExtractLine,
    MonthFigures,
    report_audit_events,
    report_complaint_counts,
    report_escrow_figures,
    report_latest_complaints,
    report_ledger_extract,
    report_monthly_figures,
)
from regulator.reports.names import (
    CATEGORY_NAMES,
    CODE_NAMES,
    COMPLAINT_CATEGORY_NAMES,
    COMPLAINT_STATE_NAMES,
    HASH_PREFIX,
    LEVEL_NAMES,
    MONTHS,
    SIGNAL_NAMES,
    SOURCE_NAMES,
    STATUS_NAMES,
    TITLE,
)
from regulator.selectors.audit import (
    audit_actor_in_words,
    audit_actor_name,
    audit_changes_in_words,
    audit_reason_in_words,
    audit_verb_label,
)
from regulator.selectors.jurisdiction import CITY, jurisdiction_of
from regulator.selectors.risk import merchant_get, risk_history, risk_latest

# --- layout ----------------------------------------------------------------------------------

_CELL = ParagraphStyle("audit_cell", parent=BODY, fontSize=8, leading=10.5)
_OK = ParagraphStyle("audit_ok", parent=BODY, textColor=colors.HexColor("#2e7d32"))


def _cell(text: str) -> Paragraph:
    """A table cell that wraps; the text is user input or ours, escaped either way."""
    return Paragraph(escape(text), _CELL)


def _moment(moment: datetime | None) -> str:
    return beijing_datetime(moment, language="zh-hans") if moment else "无"


def _yes(value: bool, yes: str, no: str) -> str:
    return yes if value else no


def _percent(ratio: float) -> str:
    return f"{round(ratio * 100)}%"


def signal_value_text(name: str, value: Any) -> str:
    """A signal's ``value`` as the regulator reads it (money in yuan, ratios in percent)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "是" if value else "否"
    if name == "escrow_outstanding" and isinstance(value, int):
        return yuan(value)
    if name == "months_owed":
        return f"{value} 个月"
    if name == "sales_surge":
        return f"{value} 倍"
    if name in ("redemption_drop", "discount_depth", "refund_rate", "rejected_redemptions"):
        return _percent(value)
    if name == "overdue_complaints":
        return f"{value} 件"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1f}"
    return "—" if value is None else str(value)


def _explanation_zh(signal: dict) -> str:
    explanation = signal.get("explanation")
    if isinstance(explanation, dict):
        return explanation.get("zh-hans") or explanation.get("en") or ""
    return str(explanation or signal.get("explanation_zh") or "")


def _profile(merchant: Merchant) -> list[Flowable]:
    pairs = [
        ("商户名称", merchant.name),
        ("统一社会信用代码", merchant.license_number),
        ("经营类别", CATEGORY_NAMES.get(merchant.category, merchant.category)),
        ("所在区", district_name(merchant.district, "zh-hans")),
        ("经营地址", merchant.address),
        ("经营状态", STATUS_NAMES.get(merchant.status, merchant.status)),
        ("入驻时间", _moment(merchant.created_at)),
        ("平台商户号", str(merchant.pk)),
    ]
    if merchant.closes_on or merchant.closure_announced_at:
        pairs += [
            ("停业公告时间", _moment(merchant.closure_announced_at)),
            ("停业日期", beijing_date(merchant.closes_on, language="zh-hans") if merchant.closes_on else "无"),
            ("停业原因", merchant.closure_reason or "无"),
        ]
    pairs += [
        ("风险标记", _yes(merchant.flagged, "已标记", "未标记")),
        ("售卡", _yes(merchant.sales_frozen, "已冻结", "正常")),
        ("资金划付", _yes(merchant.releases_frozen, "已冻结", "正常")),
        ("当前风险评分", f"{merchant.risk_score}（{LEVEL_NAMES.get(merchant.risk_level, merchant.risk_level)}）"),
        ("公开风险提示", merchant.risk_warning or "无"),
    ]
    return [pairs_table(pairs)]


def _risk(latest: RiskAssessment | None, history: list[tuple]) -> list[Flowable]:
    if latest is None:
        return [p("尚无风险评估记录：该商户还未经过风险评分。")]
    level = LEVEL_NAMES.get(latest.level, latest.level)
    story: list[Flowable] = [
        p(f"最近一次评估：{beijing_time(latest.computed_at)}，评分 {latest.score} 分，风险等级：{level}。"),
        Spacer(0, 2 * mm),
    ]
    rows = []
    weights = contributions = 0.0
    for signal in latest.signals:
        name = signal.get("name", "")
        rows.append(
            [
                Paragraph(f"{escape(SIGNAL_NAMES.get(name, name))}<br/><font size=6.5>{escape(name)}</font>", _CELL),
                _cell(_explanation_zh(signal)),
                signal_value_text(name, signal.get("value")),
                _number(signal.get("weight")),
                _number(signal.get("contribution")),
            ]
        )
        weights += signal.get("weight") or 0
        contributions += signal.get("contribution") or 0
    rows.append(["合计（评分）", "", "", _number(weights), f"{contributions:.1f}（{latest.score}）"])
    widths = [34 * mm, WIDTH - 94 * mm, 26 * mm, 12 * mm, 22 * mm]
    story.append(ruled_table(["风险信号", "说明", "取值", "权重", "贡献分"], rows, widths, right=2, totals=1))
    story += [
        Spacer(0, 1.5 * mm),
        p("贡献分 = 信号归一化值（0-1）× 权重；评分为各信号贡献分之和（四舍五入，最高 100 分）。", NOTE),
        p(f"风险评分走势（{len(history)} 次评估）", HEADING),
        risk_score_chart(history),
    ]
    return story


def _month_label(month: date) -> str:
    """``2026年6月``, or ``2026年6月（截至15日）`` for the current month, which is not over."""
    day = partial_day(month)
    label = f"{month.year}年{month.month}月"
    return label if day is None else f"{label}（截至{day}日）"


def _monthly(months: list[MonthFigures]) -> list[Flowable]:
    rows = [[_month_label(row.month), f"{row.cards:,}", yuan(row.sales), yuan(row.released)] for row in months]
    rows.append(
        [
            "合计",
            f"{sum(row.cards for row in months):,}",
            yuan(sum(row.sales for row in months)),
            yuan(sum(row.released for row in months)),
        ]
    )
    widths = [30 * mm, 30 * mm, (WIDTH - 60 * mm) / 2, (WIDTH - 60 * mm) / 2]
    return [
        monthly_chart(months),
        Spacer(0, 2 * mm),
        ruled_table(["月份（北京时间）", "售卡张数", "售卡金额", "服务划付金额"], rows, widths, right=1, totals=1),
    ]


def _escrow(figures: dict[str, int]) -> list[Flowable]:
    pairs = [
        ("托管资金余额", f"{yuan(figures['escrow'])}（{figures['holding_cards']:,} 张卡）"),
        ("累计售卡", f"{yuan(figures['sold'])}（{figures['sold_cards']:,} 张卡）"),
        ("已划付商户", yuan(figures["released"])),
        (
            "已退还消费者",
            f"{yuan(figures['refunded'])}（{figures['refunds']:,} 笔，未付 {figures['refunds_unpaid']:,} 笔）",
        ),
        ("已付款至商户", yuan(figures["paid_out"])),
        ("待付款至商户", yuan(figures["available"])),
        ("其中：服务划付", yuan(figures["ledger_released"])),
        ("其中：退款手续费", yuan(figures["ledger_fees"])),
    ]
    balanced = figures["sold"] == figures["escrow"] + figures["released"] + figures["refunded"]
    check = (
        f"核对：累计售卡 {yuan(figures['sold'])} = 托管资金余额 {yuan(figures['escrow'])} + 已划付 "
        f"{yuan(figures['released'])} + 已退还 {yuan(figures['refunded'])}，"
    )
    return [
        pairs_table(pairs),
        Spacer(0, 1.5 * mm),
        p(check + ("相符。" if balanced else "不符，请核查。"), _OK if balanced else WARNING),
        p(
            "托管资金余额为冷静期、正常使用及冻结状态的卡在托管账户中的余额；已划付含服务划付与退款手续费；"
            "待付款至商户为商户结算账户余额（已划付、尚未付款）。",
            NOTE,
        ),
    ]


def _complaints(counts: dict[tuple[str, str], int], latest: list[Complaint]) -> list[Flowable]:
    total = sum(counts.values())
    if not total:
        return [p("该商户没有投诉记录。")]
    states = list(COMPLAINT_STATE_NAMES)
    rows = []
    for category, name in COMPLAINT_CATEGORY_NAMES.items():
        line = [counts.get((category, state), 0) for state in states]
        if any(line):
            rows.append([name, *map(str, line), str(sum(line))])
    by_state = [sum(n for (_, state), n in counts.items() if state == wanted) for wanted in states]
    rows.append(["合计", *map(str, by_state), str(total)])
    widths = [WIDTH - 5 * 24 * mm] + [24 * mm] * 5
    header = ["投诉类别", *COMPLAINT_STATE_NAMES.values(), "合计"]
    story: list[Flowable] = [
        p(
            f"投诉共 {total} 件："
            + "，".join(f"{COMPLAINT_STATE_NAMES[s]} {n} 件" for s, n in zip(states, by_state, strict=True))
        ),
        Spacer(0, 2 * mm),
        ruled_table(header, rows, widths, right=1, totals=1),
        p(f"最近 {len(latest)} 件投诉", HEADING),
    ]
    rows = [
        [
            _moment(complaint.created_at),
            _cell(COMPLAINT_CATEGORY_NAMES.get(complaint.category, complaint.category)),
            _cell(SOURCE_NAMES.get(complaint.source, complaint.source) + ("（紧急）" if complaint.urgent else "")),
            _cell(COMPLAINT_STATE_NAMES.get(complaint.state, complaint.state)),
            _moment(complaint.respond_by),
            _cell(complaint.description[:120]),
        ]
        for complaint in latest
    ]
    widths = [26 * mm, 22 * mm, 20 * mm, 22 * mm, 26 * mm, WIDTH - 116 * mm]
    story.append(ruled_table(["登记时间", "类别", "来源", "状态", "答复期限", "内容摘要"], rows, widths, right=9))
    return story


def _changes_text(verb: str, changes: dict) -> str:
    words = audit_changes_in_words(verb=verb, changes=changes)
    return "；".join(f"{change['label']}：{change['before']} → {change['after']}" for change in words) or "无"


def _audit(events: list[AuditEvent], total: int) -> list[Flowable]:
    if not events:
        return [p("该商户没有监管操作记录。")]
    with translation.override("zh-hans"):
        rows = [
            [
                _moment(event.created_at),
                _cell(audit_verb_label("action", event.verb)),
                _cell(audit_actor_in_words(audit_actor_name(event.actor, event.actor_label))),
                _cell(audit_reason_in_words(kind="action", verb=event.verb, reason=event.reason) or "无"),
                _cell(_changes_text(event.verb, event.changes)),
            ]
            for event in events
        ]
    widths = [26 * mm, 24 * mm, 22 * mm, (WIDTH - 72 * mm) / 2, (WIDTH - 72 * mm) / 2]
    story: list[Flowable] = [ruled_table(["时间", "操作", "操作人", "理由", "变更"], rows, widths, right=9)]
    if total > len(events):
        story.append(p(f"共 {total} 条记录，此处列出最近 {len(events)} 条；完整记录见监管审计日志。", NOTE))
    return story


def _ledger(
    lines: list[ExtractLine], check: LedgerCheck | None, head_hash: str, heads: list[tuple[int, int, str]]
) -> list[Flowable]:
    story: list[Flowable] = []
    if lines:
        rows = [
            [
                _moment(line.created_at),
                f"#{line.entry_id}",
                CODE_NAMES.get(line.code, line.code),
                yuan(line.amount),
                f"{line.chain}:{line.seq}",
                line.hash[:HASH_PREFIX],
            ]
            for line in lines
        ]
        widths = [28 * mm, 22 * mm, 22 * mm, 30 * mm, 22 * mm, WIDTH - 124 * mm]
        story.append(
            ruled_table(["时间", "分录号", "类型", "金额", "链:序号", "分录哈希（前缀）"], rows, widths, right=3)
        )
        story.append(p(f"以上为涉及该商户结算账户或其卡托管账户的最近 {len(lines)} 笔分录，按时间倒序。", NOTE))
    else:
        story.append(p("账本中没有涉及该商户的分录。"))
    if heads:
        story += [
            p("所涉哈希链的链头", HEADING),
            ruled_table(
                ["链", "最新序号", "链头哈希"],
                [[str(chain), str(seq), _cell(link)] for chain, seq, link in heads],
                [18 * mm, 24 * mm, WIDTH - 42 * mm],
                right=9,
            ),
        ]
    story.append(p("账本校验结果", HEADING))
    if check is None:
        story.append(p(f"尚无全账核验记录（每日 03:20 自动核验）。当前账本头哈希：{head_hash}"))
        return story
    story.append(
        pairs_table(
            [
                ("借贷平衡", _yes(check.balanced, "通过", "未通过")),
                ("哈希链完整", _yes(check.chain_ok, "通过", "未通过")),
                ("托管资金相符", _yes(check.custody_matches, "通过", "未通过")),
                ("账户余额相符", _yes(check.accounts_match, "通过", "未通过")),
                ("核验分录数", f"{check.entries:,}"),
                ("核验时间", _moment(check.created_at)),
                ("核验时账本头哈希", check.head_hash),
                ("当前账本头哈希", head_hash),
            ]
        )
    )
    if not check.ok or check.problems:
        problems = "；".join(escape(problem) for problem in check.problems[:10])
        story.append(p(f"校验发现问题（共 {check.problems_total} 项）：{problems}", WARNING))
    return story


def audit_report_pdf(*, merchant_id, generated_by=None) -> bytes:
    """The audit report of merchant ``merchant_id`` (404 ``NotFound`` if there is none, or if it is
    outside the jurisdiction of ``generated_by``): an A4 PDF. ``generated_by`` is the regulator who
    asked for it, named on the report; without one (a job) the merchant may be any of the city's.
    The ledger's verification and head hash in it are the whole book's (the ledger is one book)."""
    jurisdiction = CITY if generated_by is None else jurisdiction_of(generated_by)
    merchant = merchant_get(jurisdiction=jurisdiction, merchant_id=merchant_id)
    latest = risk_latest(merchant=merchant)
    history = risk_history(merchant=merchant)
    months = report_monthly_figures(merchant=merchant)
    figures = report_escrow_figures(merchant=merchant)
    complaint_counts = report_complaint_counts(merchant=merchant)
    complaints = report_latest_complaints(merchant=merchant)
    events, events_total = report_audit_events(merchant=merchant)
    lines = report_ledger_extract(merchant=merchant)
    chains = sorted({line.chain for line in lines})
    heads = list(ChainHead.objects.filter(chain__in=chains).order_by("chain").values_list("chain", "seq", "hash"))
    check = LedgerCheck.objects.order_by("-created_at", "-pk").first()
    head_hash = heads_hash(ChainHead.objects.values_list("chain", "seq", "hash"))
    generated_at = clock.now()
    who = (generated_by.get_username() if generated_by is not None else "") or "系统"

    buffer = io.BytesIO()
    doc = document(buffer, title=f"{TITLE} {merchant.name}", subject=f"{merchant.name} {merchant.license_number}")
    story: list[Flowable] = [
        p(TITLE, TITLE_STYLE),
        p(f"{escape(merchant.name)}　统一社会信用代码 {merchant.license_number}", SUBTITLE),
        p(f"由 {escape(who)} 于 {beijing_time(generated_at)} 生成", SUBTITLE),
        Spacer(0, 4 * mm),
        p("一、商户基本信息及执照", HEADING),
        *_profile(merchant),
        p("二、风险评估", HEADING),
        *_risk(latest, history),
        p(f"三、近 {MONTHS} 个月售卡与服务划付", HEADING),
        KeepTogether(_monthly(months)),
        p("四、托管资金", HEADING),
        *_escrow(figures),
        p("五、投诉情况", HEADING),
        *_complaints(complaint_counts, complaints),
        p(f"六、监管操作记录（{events_total} 条）", HEADING),
        *_audit(events, events_total),
        p("七、账本摘录及校验", HEADING),
        *_ledger(lines, check, head_hash, heads),
        Spacer(0, 4 * mm),
        p(
            f"本报告由 {escape(who)} 于 {beijing_time(generated_at)} 生成，数据截至生成时刻。"
            "金额以人民币元列示，由以分为单位的整数记录换算；时间均为北京时间。",
            NOTE,
        ),
    ]
    footer = f"{TITLE}　{merchant.name}　{beijing_date(clock.local_date(generated_at), language='zh-hans')}"
    doc.build(story, canvasmaker=page_canvas(footer))
    return buffer.getvalue()
