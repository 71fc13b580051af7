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

Every read is one aggregate or one bounded query; no query runs per row. The layout follows the
settlement statement (``merchants.statement``): the CID font STSong-Light, money as integer fen
formatted without floats, Beijing time, and "第 n 页 / 共 N 页" in every page's footer. A merchant
with no assessment, no card and no complaint gets the same report, each section saying so.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncMonth
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Paragraph, SimpleDocTemplate, Spacer

from complaints.models import Complaint
from consumers.contract import FONT
from consumers.models import Card
from core import clock
from core.formatting import beijing_time, yuan
from escrow.models import Account, ChainHead, JournalEntry, LedgerCheck, Posting
from escrow.selectors import heads_hash
from merchants.models import Merchant
from merchants.registry import district_name
from merchants.statement import page_canvas, pairs_table, ruled_table
from refunds.models import Refund
from regulator.models import AuditEvent, RiskAssessment
from regulator.selectors.risk import merchant_get, risk_history, risk_latest
from regulator.services.risk import HOLDING

TITLE = "预付卡商户审计报告"
AUTHOR = "单用途预付卡资金托管平台"
MONTHS = 12  # months of sales and releases charted
LEDGER_LINES = 50  # journal entries in the extract
AUDIT_LINES = 100  # audit events listed
LATEST_COMPLAINTS = 10
HASH_PREFIX = 16

SIGNAL_NAMES = {
    "escrow_outstanding": "托管资金余额",
    "months_owed": "待履约月数",
    "sales_surge": "售卡激增",
    "redemption_drop": "服务释放骤降",
    "discount_depth": "储值卡折扣深度",
    "complaints_per_100_cards": "每百张卡投诉数",
    "overdue_complaints": "逾期未答复投诉",
    "refund_rate": "消费者退卡率",
    "rejected_redemptions": "服务被拒确认率",
    "filing_threshold": "达到备案标准",
}
LEVEL_NAMES = {"low": "低", "medium": "中", "high": "高"}
CATEGORY_NAMES = {
    Merchant.Category.FITNESS: "健身",
    Merchant.Category.BEAUTY: "美容美发",
    Merchant.Category.EDUCATION: "教育培训",
    Merchant.Category.CATERING: "餐饮",
    Merchant.Category.LAUNDRY: "洗衣",
    Merchant.Category.OTHER: "其他",
}
STATUS_NAMES = {
    Merchant.Status.ACTIVE: "正常经营",
    Merchant.Status.CLOSING: "停业公告期",
    Merchant.Status.CLOSED: "已停业",
}
COMPLAINT_STATE_NAMES = {
    Complaint.State.OPEN: "待答复",
    Complaint.State.RESPONDED: "已答复",
    Complaint.State.OVERDUE: "逾期未答复",
    Complaint.State.CLOSED: "已办结",
}
COMPLAINT_CATEGORY_NAMES = {
    Complaint.Category.REFUND_REFUSED: "拒绝退款",
    Complaint.Category.SERVICE_QUALITY: "服务质量",
    Complaint.Category.SERVICE_UNAVAILABLE: "无法提供服务",
    Complaint.Category.CLOSURE: "停业或失联",
    Complaint.Category.MISLEADING_SALES: "误导销售",
    Complaint.Category.CONTRACT_TERMS: "不公平合同条款",
    Complaint.Category.OTHER: "其他",
}
SOURCE_NAMES = {Complaint.Source.APP: "App", Complaint.Source.HOTLINE: "12345 热线"}
CODE_NAMES = {
    JournalEntry.Code.PURCHASE: "购卡",
    JournalEntry.Code.RELEASE: "服务划付",
    JournalEntry.Code.FEE: "退款手续费",
    JournalEntry.Code.REFUND: "退款",
    JournalEntry.Code.REFUND_PAID: "退款支付",
    JournalEntry.Code.PAYOUT: "商户付款",
    JournalEntry.Code.CORRECTION: "更正",
}
VERB_NAMES = {
    "flag": "标记风险",
    "unflag": "取消风险标记",
    "freeze_sales": "冻结售卡",
    "unfreeze_sales": "解冻售卡",
    "freeze_releases": "冻结资金划付",
    "unfreeze_releases": "解冻资金划付",
    "order_refunds": "责令退款",
    "risk_auto_flag": "高风险自动标记",
    "complaint_create": "登记投诉",
    "complaint_close": "办结投诉",
    "complaint_respond": "商户答复投诉",
    "complaint_overdue": "投诉逾期",
}
FIELD_NAMES = {
    "flagged": "风险标记",
    "sales_frozen": "售卡冻结",
    "releases_frozen": "划付冻结",
    "risk_warning": "风险提示",
    "state": "状态",
    "late": "逾期答复",
}


# --- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonthFigures:
    """One Beijing month: ``sales`` fen paid for ``cards`` cards, ``released`` fen of releases."""

    month: date  # its first day
    cards: int
    sales: int
    released: int


@dataclass(frozen=True, slots=True)
class ExtractLine:
    """One journal entry of the ledger extract; ``amount`` is what it moved (its debits)."""

    entry_id: int
    created_at: datetime
    code: str
    amount: int
    chain: int
    seq: int
    hash: str


def _month_start(day: date, back: int) -> date:
    """The first day of the month ``back`` months before ``day``'s."""
    index = day.year * 12 + day.month - 1 - back
    return date(index // 12, index % 12 + 1, 1)


def report_monthly_figures(*, merchant: Merchant, months: int = MONTHS) -> list[MonthFigures]:
    """Selector: card sales and releases of the last ``months`` Beijing months (this one included),
    oldest first. Two ``GROUP BY`` month queries: cards by ``paid_at`` (its index), and the release
    postings on the merchant's settlement account by their entry's time (the (account, entry) index)."""
    today = clock.local_date()
    since = clock.local_midnight(_month_start(today, months - 1))
    sales = (
        Card.objects.filter(merchant=merchant, paid_at__gte=since)
        .annotate(month=TruncMonth("paid_at", tzinfo=clock.BEIJING))
        .values("month")
        .annotate(cards=Count("pk"), sales=Sum("price"))
        .values_list("month", "cards", "sales")
    )
    releases = (
        Posting.objects.filter(
            account_id=merchant.settlement_account_id,
            entry__code=JournalEntry.Code.RELEASE,
            entry__created_at__gte=since,
        )
        .annotate(month=TruncMonth("entry__created_at", tzinfo=clock.BEIJING))
        .values("month")
        .annotate(released=Sum(-F("amount")))
        .values_list("month", "released")
    )

    def key(month: datetime | date) -> date:
        local = clock.local(month) if isinstance(month, datetime) else month
        return date(local.year, local.month, 1)

    sold = {key(month): (cards, total) for month, cards, total in sales}
    released = {key(month): total for month, total in releases}
    rows = []
    for back in range(months - 1, -1, -1):
        month = _month_start(today, back)
        cards, total = sold.get(month, (0, 0))
        rows.append(MonthFigures(month=month, cards=cards, sales=total or 0, released=released.get(month) or 0))
    return rows


def report_escrow_figures(*, merchant: Merchant) -> dict[str, int]:
    """Selector: the merchant's money, in fen. Card totals in one aggregate (``escrow`` is held by
    the cards in a holding state, as the risk model counts it); the settlement account's postings by
    entry code in another; refunds in a third."""
    cards = Card.objects.filter(merchant=merchant, paid_at__isnull=False).aggregate(
        sold_cards=Count("pk"),
        sold=Coalesce(Sum("price"), 0),
        released=Coalesce(Sum("released_total"), 0),
        refunded=Coalesce(Sum("refunded_total"), 0),
        holding_cards=Count("pk", filter=Q(state__in=HOLDING)),
        escrow=Coalesce(Sum(F("price") - F("released_total") - F("refunded_total"), filter=Q(state__in=HOLDING)), 0),
    )
    by_code = dict(
        Posting.objects.filter(account_id=merchant.settlement_account_id)
        .values("entry__code")
        .annotate(total=Sum("amount"))
        .values_list("entry__code", "total")
    )
    refunds = Refund.objects.filter(card__merchant=merchant).aggregate(
        count=Count("pk"), pending=Count("pk", filter=~Q(state=Refund.State.PAID))
    )
    available = Account.objects.values_list("balance", flat=True).get(pk=merchant.settlement_account_id)
    return {
        **cards,
        "ledger_released": -(by_code.get(JournalEntry.Code.RELEASE) or 0),
        "ledger_fees": -(by_code.get(JournalEntry.Code.FEE) or 0),
        "paid_out": by_code.get(JournalEntry.Code.PAYOUT) or 0,
        "available": available,
        "refunds": refunds["count"],
        "refunds_unpaid": refunds["pending"],
    }


def report_complaint_counts(*, merchant: Merchant) -> dict[tuple[str, str], int]:
    """Selector: ``{(category, state): count}`` of all the merchant's complaints, one ``GROUP BY``."""
    rows = (
        Complaint.objects.filter(merchant=merchant)
        .values("category", "state")
        .annotate(n=Count("pk"))
        .values_list("category", "state", "n")
    )
    return {(category, state): n for category, state, n in rows}


def report_latest_complaints(*, merchant: Merchant, limit: int = LATEST_COMPLAINTS) -> list[Complaint]:
    return list(Complaint.objects.filter(merchant=merchant).order_by("-created_at", "-pk")[:limit])


def report_audit_events(*, merchant: Merchant, limit: int = AUDIT_LINES) -> tuple[list[AuditEvent], int]:
    """Selector: the newest ``limit`` audit events of the merchant, newest first, and how many it has."""
    events = AuditEvent.objects.filter(merchant=merchant)
    newest = list(events.select_related("actor").order_by("-created_at", "-pk")[:limit])
    return newest, (len(newest) if len(newest) < limit else events.count())


def report_ledger_extract(*, merchant: Merchant, limit: int = LEDGER_LINES) -> list[ExtractLine]:
    """Selector: the newest ``limit`` journal entries that touch the merchant's settlement account
    or one of its cards' escrow accounts, newest first.

    The newest ``limit`` entries of each kind are found apart (the settlement account's postings by
    its index; the cards' escrow postings through the cards' merchant index), then the entries
    among them are read once, with what each moved."""
    newest = ("-entry__created_at", "-entry_id")
    settlement = Posting.objects.filter(account_id=merchant.settlement_account_id).order_by(*newest)
    escrow = Posting.objects.filter(account__card__merchant=merchant).order_by(*newest)
    ids = set(settlement.values_list("entry_id", flat=True)[:limit])
    ids |= set(escrow.values_list("entry_id", flat=True)[:limit])
    rows = (
        JournalEntry.objects.filter(pk__in=ids)
        .annotate(moved=Sum("postings__amount", filter=Q(postings__amount__gt=0)))
        .order_by("-created_at", "-pk")
        .values_list("pk", "created_at", "code", "moved", "chain", "seq", "hash")[:limit]
    )
    return [
        ExtractLine(entry_id=pk, created_at=at, code=code, amount=moved or 0, chain=chain, seq=seq, hash=link)
        for pk, at, code, moved, chain, seq, link in rows
    ]


# --- charts ----------------------------------------------------------------------------------

_CHART_WIDTH = A4[0] - 36 * mm
_CHART_HEIGHT = 62 * mm
_SALES_COLOR = colors.HexColor("#4a78b5")
_RELEASE_COLOR = colors.HexColor("#e39b3b")
_SCORE_COLOR = colors.HexColor("#b53a3a")


def _axis_font(axis) -> None:
    axis.labels.fontName = FONT
    axis.labels.fontSize = 7


def risk_score_chart(history: list[tuple[datetime, int, str]]) -> Drawing:
    """The score (0-100) over time, one point per assessment, with the medium and high lines.

    ``history`` is ``(computed_at, score, level)`` oldest first (``risk_history``). x is days since
    the first assessment, labelled with the Beijing date."""
    drawing = Drawing(_CHART_WIDTH, _CHART_HEIGHT)
    first = history[0][0]
    points = [((at - first).total_seconds() / 86400, score) for at, score, _ in history]
    plot = LinePlot()
    plot.x, plot.y = 14 * mm, 10 * mm
    plot.width, plot.height = _CHART_WIDTH - 36 * mm, _CHART_HEIGHT - 16 * mm
    plot.data = [points]
    plot.lines[0].strokeColor = _SCORE_COLOR
    plot.lines[0].strokeWidth = 1.2
    plot.lines[0].symbol = makeMarker("FilledCircle", size=2.5 if len(points) <= 60 else 0)
    span = points[-1][0]
    plot.xValueAxis.valueMin = -0.5 if span == 0 else 0
    plot.xValueAxis.valueMax = 0.5 if span == 0 else span
    plot.xValueAxis.valueSteps = [0.0] if span == 0 else [span * step / 5 for step in range(6)]
    plot.xValueAxis.labelTextFormat = lambda days: f"{clock.local(first + timedelta(days=days)):%Y-%m-%d}"
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax, plot.yValueAxis.valueStep = 0, 100, 20
    plot.yValueAxis.labelTextFormat = "%d"
    _axis_font(plot.xValueAxis)
    _axis_font(plot.yValueAxis)
    drawing.add(plot)
    for name, color in (("RISK_LEVEL_MEDIUM", colors.orange), ("RISK_LEVEL_HIGH", colors.red)):
        level = getattr(settings, name, None)
        if level is None:
            continue
        y = plot.y + plot.height * level / 100
        drawing.add(Line(plot.x, y, plot.x + plot.width, y, strokeColor=color, strokeWidth=0.5, strokeDashArray=[3, 2]))
        label = "高风险线" if name == "RISK_LEVEL_HIGH" else "中风险线"
        drawing.add(String(plot.x + plot.width + 1, y - 2, f"{label} {level}", fontName=FONT, fontSize=6))
    drawing.add(String(plot.x, _CHART_HEIGHT - 4 * mm, "风险评分（0-100）", fontName=FONT, fontSize=8))
    return drawing


def _axis_yuan(fen: float) -> str:
    """Axis ticks are drawn at fen values; shown as whole yuan (rounded down)."""
    return f"¥{int(fen) // 100:,}"


def monthly_chart(months: list[MonthFigures]) -> Drawing:
    """Card sales against releases, month by month: two bars a month, in fen."""
    drawing = Drawing(_CHART_WIDTH, _CHART_HEIGHT)
    chart = VerticalBarChart()
    chart.x, chart.y = 22 * mm, 10 * mm
    chart.width, chart.height = _CHART_WIDTH - 26 * mm, _CHART_HEIGHT - 20 * mm
    chart.data = [[row.sales for row in months], [row.released for row in months]]
    chart.categoryAxis.categoryNames = [f"{row.month:%Y-%m}" for row in months]
    chart.categoryAxis.labels.angle = 30
    chart.categoryAxis.labels.boxAnchor = "ne"
    chart.valueAxis.valueMin = 0
    if not any(row.sales or row.released for row in months):
        chart.valueAxis.valueMax = 100_000  # nothing to draw: a ¥1,000 scale rather than a flat axis
    chart.valueAxis.labelTextFormat = _axis_yuan
    _axis_font(chart.categoryAxis)
    _axis_font(chart.valueAxis)
    chart.bars[0].fillColor = _SALES_COLOR
    chart.bars[1].fillColor = _RELEASE_COLOR
    chart.barSpacing = 0.5
    chart.groupSpacing = 4
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = chart.x + 2 * mm, _CHART_HEIGHT - 2 * mm
    legend.fontName, legend.fontSize = FONT, 7.5
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = 28 * mm
    legend.colorNamePairs = [(_SALES_COLOR, "售卡金额"), (_RELEASE_COLOR, "服务划付金额")]
    drawing.add(legend)
    return drawing


# --- layout ----------------------------------------------------------------------------------

_BODY = ParagraphStyle("audit_body", fontName=FONT, fontSize=9.5, leading=14, wordWrap="CJK")
_CELL = ParagraphStyle("audit_cell", parent=_BODY, fontSize=8, leading=10.5)
_TITLE = ParagraphStyle("audit_title", parent=_BODY, fontSize=18, leading=24, alignment=TA_CENTER)
_SUBTITLE = ParagraphStyle(
    "audit_subtitle", parent=_BODY, fontSize=8, leading=11, alignment=TA_CENTER, textColor=colors.grey
)
_HEADING = ParagraphStyle(
    "audit_heading", parent=_BODY, fontSize=12, leading=17, spaceBefore=5 * mm, spaceAfter=2 * mm, keepWithNext=1
)
_NOTE = ParagraphStyle("audit_note", parent=_BODY, fontSize=8, leading=11, textColor=colors.grey)
_WARNING = ParagraphStyle("audit_warning", parent=_BODY, textColor=colors.red)
_OK = ParagraphStyle("audit_ok", parent=_BODY, textColor=colors.HexColor("#2e7d32"))

_WIDTH = A4[0] - 36 * mm  # the statement's margins: 18 mm each side


def _p(text: str, style: ParagraphStyle = _BODY) -> Paragraph:
    return Paragraph(text, style)


def _cell(text: str) -> Paragraph:
    """A table cell that wraps; the text is user input or ours, escaped either way."""
    return Paragraph(escape(text), _CELL)


def _moment(moment: datetime | None) -> str:
    return f"{clock.local(moment):%Y-%m-%d %H:%M}" if moment else "—"


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
            ("停业日期", merchant.closes_on.isoformat() if merchant.closes_on else "—"),
            ("停业原因", merchant.closure_reason or "—"),
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
        return [_p("尚无风险评估记录：该商户还未经过风险评分。")]
    level = LEVEL_NAMES.get(latest.level, latest.level)
    story: list[Flowable] = [
        _p(f"最近一次评估：{beijing_time(latest.computed_at)}，评分 {latest.score} 分，风险等级：{level}。"),
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
    widths = [34 * mm, _WIDTH - 94 * mm, 26 * mm, 12 * mm, 22 * mm]
    story.append(ruled_table(["风险信号", "说明", "取值", "权重", "贡献分"], rows, widths, right=2, totals=1))
    story += [
        Spacer(0, 1.5 * mm),
        _p("贡献分 = 信号归一化值（0-1）× 权重；评分为各信号贡献分之和（四舍五入，最高 100 分）。", _NOTE),
        _p(f"风险评分走势（{len(history)} 次评估）", _HEADING),
        risk_score_chart(history),
    ]
    return story


def _monthly(months: list[MonthFigures]) -> list[Flowable]:
    rows = [[f"{row.month:%Y-%m}", f"{row.cards:,}", yuan(row.sales), yuan(row.released)] for row in months]
    rows.append(
        [
            "合计",
            f"{sum(row.cards for row in months):,}",
            yuan(sum(row.sales for row in months)),
            yuan(sum(row.released for row in months)),
        ]
    )
    widths = [30 * mm, 30 * mm, (_WIDTH - 60 * mm) / 2, (_WIDTH - 60 * mm) / 2]
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
        _p(check + ("相符。" if balanced else "不符，请核查。"), _OK if balanced else _WARNING),
        _p(
            "托管资金余额为冷静期、正常使用及冻结状态的卡在托管账户中的余额；已划付含服务划付与退款手续费；"
            "待付款至商户为商户结算账户余额（已划付、尚未付款）。",
            _NOTE,
        ),
    ]


def _complaints(counts: dict[tuple[str, str], int], latest: list[Complaint]) -> list[Flowable]:
    total = sum(counts.values())
    if not total:
        return [_p("该商户没有投诉记录。")]
    states = list(COMPLAINT_STATE_NAMES)
    rows = []
    for category, name in COMPLAINT_CATEGORY_NAMES.items():
        line = [counts.get((category, state), 0) for state in states]
        if any(line):
            rows.append([name, *map(str, line), str(sum(line))])
    by_state = [sum(n for (_, state), n in counts.items() if state == wanted) for wanted in states]
    rows.append(["合计", *map(str, by_state), str(total)])
    widths = [_WIDTH - 5 * 24 * mm] + [24 * mm] * 5
    header = ["投诉类别", *COMPLAINT_STATE_NAMES.values(), "合计"]
    story: list[Flowable] = [
        _p(
            f"投诉共 {total} 件："
            + "，".join(f"{COMPLAINT_STATE_NAMES[s]} {n} 件" for s, n in zip(states, by_state, strict=True))
        ),
        Spacer(0, 2 * mm),
        ruled_table(header, rows, widths, right=1, totals=1),
        _p(f"最近 {len(latest)} 件投诉", _HEADING),
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
    widths = [26 * mm, 22 * mm, 20 * mm, 22 * mm, 26 * mm, _WIDTH - 116 * mm]
    story.append(ruled_table(["登记时间", "类别", "来源", "状态", "答复期限", "内容摘要"], rows, widths, right=9))
    return story


def _changes_text(changes: dict) -> str:
    parts = []
    for field, pair in (changes or {}).items():
        before, after = pair if isinstance(pair, list | tuple) and len(pair) == 2 else (None, pair)
        parts.append(f"{FIELD_NAMES.get(field, field)}：{_plain(before)} → {_plain(after)}")
    return "；".join(parts) or "—"


def _plain(value: Any) -> str:
    if value is None or value == "":
        return "无"
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def _audit(events: list[AuditEvent], total: int) -> list[Flowable]:
    if not events:
        return [_p("该商户没有监管操作记录。")]
    rows = [
        [
            _moment(event.created_at),
            _cell(VERB_NAMES.get(event.verb, event.verb)),
            _cell(event.actor.username if event.actor else event.actor_label or "system"),
            _cell(event.reason or "—"),
            _cell(_changes_text(event.changes)),
        ]
        for event in events
    ]
    widths = [26 * mm, 24 * mm, 22 * mm, (_WIDTH - 72 * mm) / 2, (_WIDTH - 72 * mm) / 2]
    story: list[Flowable] = [ruled_table(["时间", "操作", "操作人", "理由", "变更"], rows, widths, right=9)]
    if total > len(events):
        story.append(_p(f"共 {total} 条记录，此处列出最近 {len(events)} 条；完整记录见监管审计日志。", _NOTE))
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
        widths = [28 * mm, 22 * mm, 22 * mm, 30 * mm, 22 * mm, _WIDTH - 124 * mm]
        story.append(
            ruled_table(["时间", "分录号", "类型", "金额", "链:序号", "分录哈希（前缀）"], rows, widths, right=3)
        )
        story.append(_p(f"以上为涉及该商户结算账户或其卡托管账户的最近 {len(lines)} 笔分录，按时间倒序。", _NOTE))
    else:
        story.append(_p("账本中没有涉及该商户的分录。"))
    if heads:
        story += [
            _p("所涉哈希链的链头", _HEADING),
            ruled_table(
                ["链", "最新序号", "链头哈希"],
                [[str(chain), str(seq), _cell(link)] for chain, seq, link in heads],
                [18 * mm, 24 * mm, _WIDTH - 42 * mm],
                right=9,
            ),
        ]
    story.append(_p("账本校验结果", _HEADING))
    if check is None:
        story.append(_p(f"尚无全账核验记录（每日 03:20 自动核验）。当前账本头哈希：{head_hash}"))
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
        story.append(_p(f"校验发现问题（共 {check.problems_total} 项）：{problems}", _WARNING))
    return story


def audit_report_pdf(*, merchant_id, generated_by=None) -> bytes:
    """The audit report of merchant ``merchant_id`` (404 ``NotFound`` if there is none): an A4 PDF.
    ``generated_by`` is the user who asked for it, named on the report."""
    merchant = merchant_get(merchant_id=merchant_id)
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
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"{TITLE} {merchant.name}",
        author=AUTHOR,
        subject=f"{merchant.name} {merchant.license_number}",
    )
    story: list[Flowable] = [
        _p(TITLE, _TITLE),
        _p(f"{escape(merchant.name)}　统一社会信用代码 {merchant.license_number}", _SUBTITLE),
        _p(f"由 {escape(who)} 于 {beijing_time(generated_at)} 生成", _SUBTITLE),
        Spacer(0, 4 * mm),
        _p("一、商户基本信息及执照", _HEADING),
        *_profile(merchant),
        _p("二、风险评估", _HEADING),
        *_risk(latest, history),
        _p(f"三、近 {MONTHS} 个月售卡与服务划付", _HEADING),
        KeepTogether(_monthly(months)),
        _p("四、托管资金", _HEADING),
        *_escrow(figures),
        _p("五、投诉情况", _HEADING),
        *_complaints(complaint_counts, complaints),
        _p(f"六、监管操作记录（{events_total} 条）", _HEADING),
        *_audit(events, events_total),
        _p("七、账本摘录及校验", _HEADING),
        *_ledger(lines, check, head_hash, heads),
        Spacer(0, 4 * mm),
        _p(
            f"本报告由 {escape(who)} 于 {beijing_time(generated_at)} 生成，数据截至生成时刻。"
            "金额以人民币元列示，由以分为单位的整数记录换算；时间均为北京时间。",
            _NOTE,
        ),
    ]
    footer = f"{TITLE}　{merchant.name}　{clock.local_date(generated_at).isoformat()}"
    document.build(story, canvasmaker=page_canvas(footer))
    return buffer.getvalue()
