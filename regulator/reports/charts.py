"""The audit report's charts: the risk score over time, and card sales against releases by month."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, Line, String
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
