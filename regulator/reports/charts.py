"""The reports' charts. The audit report's: the risk score over time, and card sales against
releases by month. The periodic report's: the escrow held at the period's end by district, and the
money paid in, released and refunded during it by trade.

The monthly chart starts at the first month with any sales or releases (a young merchant's chart is
not eleven empty months and a sliver), gives every month at most ``_MONTH_WIDTH``, draws a non-zero
amount at least ``_MIN_BAR`` high, and draws the current month, which is not over, lighter and
dashed, with a note saying up to which day it counts: a partial month is not a plunge."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from django.conf import settings
from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors
from reportlab.lib.units import mm

from core import clock
from core.pdf import FONT, WIDTH
from regulator.reports.figures import MonthFigures

_CHART_WIDTH = WIDTH  # the text width
_CHART_HEIGHT = 62 * mm
_SALES_COLOR = colors.HexColor("#4a78b5")
_RELEASE_COLOR = colors.HexColor("#e39b3b")
_SCORE_COLOR = colors.HexColor("#b53a3a")
_PARTIAL_COLORS = (colors.HexColor("#b7cbe6"), colors.HexColor("#f3d3a6"))  # the two colours, lighter
_MIN_BAR = 1.2 * mm  # the least height of a bar of a non-zero amount
_MONTH_WIDTH = 15 * mm  # the most room one month takes


def _axis_font(axis) -> None:
    axis.labels.fontName = FONT
    axis.labels.fontSize = 7


def _day(moment) -> str:
    return f"{moment.year}年{moment.month}月{moment.day}日"  # a Beijing day, as the report's text writes it


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
    plot.xValueAxis.labelTextFormat = lambda days: _day(clock.local(first + timedelta(days=days)))
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


def charted_months(months: list[MonthFigures]) -> list[MonthFigures]:
    """The months the chart shows: from the first with any sales or releases (all of them if none)."""
    first = next((n for n, row in enumerate(months) if row.sales or row.released), 0)
    return months[first:]


def partial_day(month: date, today: date | None = None) -> int | None:
    """The day of the month ``month`` is counted up to when it is the current, unfinished month
    (Beijing time); ``None`` for a month that is over."""
    today = today or clock.local_date()
    if (month.year, month.month) != (today.year, today.month):
        return None
    return None if today.day == calendar.monthrange(today.year, today.month)[1] else today.day


def _nice_top(fen: int) -> int:
    """The axis top: 1, 2, 2.5 or 5 × 10ⁿ fen at or above ``fen`` (¥1,000 when there is nothing)."""
    if fen <= 0:
        return 100_000
    magnitude = 1000
    while magnitude * 10 < fen:
        magnitude *= 10
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= fen)


def monthly_chart(months: list[MonthFigures]) -> Drawing:
    """Card sales against releases, month by month: two bars a month, in fen, labelled in yuan."""
    months = charted_months(months)
    drawing = Drawing(_CHART_WIDTH, _CHART_HEIGHT)
    chart = VerticalBarChart()
    chart.x, chart.y = 22 * mm, 14 * mm
    chart.width = min(_CHART_WIDTH - 26 * mm, _MONTH_WIDTH * len(months))
    chart.height = _CHART_HEIGHT - 24 * mm
    chart.data = [[row.sales for row in months], [row.released for row in months]]
    chart.categoryAxis.categoryNames = [f"{row.month:%Y-%m}" for row in months]
    chart.categoryAxis.labels.angle = 30
    chart.categoryAxis.labels.boxAnchor = "ne"
    top = _nice_top(max((value for row in chart.data for value in row), default=0))
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, top, top / 5
    chart.valueAxis.labelTextFormat = _axis_yuan
    _axis_font(chart.categoryAxis)
    _axis_font(chart.valueAxis)
    chart.bars[0].fillColor = _SALES_COLOR
    chart.bars[1].fillColor = _RELEASE_COLOR
    chart.barSpacing = 0.5
    chart.groupSpacing = 4
    partial = partial_day(months[-1].month) if months else None

    def shape_bar(rect: Rect, *, value: int | None, rowNo: int, colNo: int, **_: object) -> None:
        """reportlab's hook on each bar drawn: a non-zero amount stays visible, the partial month is lighter."""
        if value and rect.height < _MIN_BAR:
            rect.height = _MIN_BAR
        if partial is not None and colNo == len(months) - 1:
            rect.fillColor = _PARTIAL_COLORS[rowNo]
            rect.strokeColor = (_SALES_COLOR, _RELEASE_COLOR)[rowNo]
            rect.strokeWidth = 0.6
            rect.strokeDashArray = [1.5, 1]

    chart.barRecord = shape_bar
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = chart.x + 2 * mm, _CHART_HEIGHT - 2 * mm
    legend.fontName, legend.fontSize = FONT, 7.5
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = 28 * mm
    legend.colorNamePairs = [(_SALES_COLOR, "售卡金额（元）"), (_RELEASE_COLOR, "服务划付金额（元）")]
    drawing.add(legend)
    if partial is not None:
        month = months[-1].month
        drawing.add(
            String(
                chart.x,
                1.5 * mm,
                f"注：浅色虚线框为本月，本月截至{month.month}月{partial}日，非整月数据。",
                fontName=FONT,
                fontSize=6.5,
                fillColor=colors.grey,
            )
        )
    return drawing


_REFUND_COLOR = colors.HexColor("#8c6bb1")
_BAR_ROW = 5.5 * mm  # the room of one district in the horizontal chart


def escrow_by_district_chart(rows: list[tuple[str, int]]) -> Drawing:
    """``(district name, fen held)`` as one horizontal bar each, the largest at the top, in yuan."""
    rows = sorted(rows, key=lambda row: (row[1], row[0]))  # reportlab draws the first at the bottom
    height = 16 * mm + _BAR_ROW * max(len(rows), 1)
    drawing = Drawing(_CHART_WIDTH, height)
    chart = HorizontalBarChart()
    chart.x, chart.y = 24 * mm, 8 * mm
    chart.width, chart.height = _CHART_WIDTH - 32 * mm, _BAR_ROW * max(len(rows), 1)
    chart.data = [[fen for _, fen in rows] or [0]]
    chart.categoryAxis.categoryNames = [name for name, _ in rows] or [""]
    top = _nice_top(max((fen for _, fen in rows), default=0))
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, top, top / 5
    chart.valueAxis.labelTextFormat = _axis_yuan
    _axis_font(chart.categoryAxis)
    _axis_font(chart.valueAxis)
    chart.bars[0].fillColor = _SALES_COLOR
    chart.barWidth = 3 * mm
    drawing.add(chart)
    drawing.add(String(chart.x, height - 4 * mm, "期末托管资金余额（元，按区）", fontName=FONT, fontSize=8))
    return drawing


def flows_by_category_chart(rows: list[tuple[str, int, int, int]]) -> Drawing:
    """``(trade name, paid in, released, refunded)`` in fen: three bars a trade, labelled in yuan."""
    drawing = Drawing(_CHART_WIDTH, _CHART_HEIGHT)
    chart = VerticalBarChart()
    chart.x, chart.y = 22 * mm, 10 * mm
    chart.width = min(_CHART_WIDTH - 26 * mm, 30 * mm * max(len(rows), 1))
    chart.height = _CHART_HEIGHT - 20 * mm
    chart.data = [[row[n] for row in rows] or [0] for n in (1, 2, 3)]
    chart.categoryAxis.categoryNames = [row[0] for row in rows] or [""]
    top = _nice_top(max((value for series in chart.data for value in series), default=0))
    chart.valueAxis.valueMin, chart.valueAxis.valueMax, chart.valueAxis.valueStep = 0, top, top / 5
    chart.valueAxis.labelTextFormat = _axis_yuan
    _axis_font(chart.categoryAxis)
    _axis_font(chart.valueAxis)
    for series, color in enumerate((_SALES_COLOR, _RELEASE_COLOR, _REFUND_COLOR)):
        chart.bars[series].fillColor = color
    chart.barSpacing = 0.5
    chart.groupSpacing = 6

    def visible(rect: Rect, *, value: int | None, **_: object) -> None:
        if value and rect.height < _MIN_BAR:
            rect.height = _MIN_BAR

    chart.barRecord = visible
    drawing.add(chart)
    legend = Legend()
    legend.x, legend.y = chart.x + 2 * mm, _CHART_HEIGHT - 2 * mm
    legend.fontName, legend.fontSize = FONT, 7.5
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = 30 * mm
    legend.colorNamePairs = [
        (_SALES_COLOR, "存入托管（元）"),
        (_RELEASE_COLOR, "划付商户（元）"),
        (_REFUND_COLOR, "退还消费者（元）"),
    ]
    drawing.add(legend)
    return drawing
