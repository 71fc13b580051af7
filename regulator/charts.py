"""Small charts drawn on the server as inline SVG: no chart library and no script in the browser.

``bar_chart``  horizontal bars, one labelled row per category (districts, complaint categories):
               long Chinese labels stay readable on a 375-pixel phone.
``histogram``  adjoining vertical bars over ordered buckets (risk scores in tens).
``line_chart`` one or more series over evenly spaced points (months, assessments). A chart of
               months whose last is the current one, not over yet, passes ``partial``
               (``current_month_note``): the last segment is dashed and the last month says up to
               which day it counts, so that a partial month does not read as a plunge.

Values are integers (fen, counts, score points) and every coordinate is an integer: a value is
scaled with integer arithmetic (``value * height // axis_top``), so money never passes through a
float. The axis top is a "nice" integer (1, 2 or 5 × 10ⁿ per tick). ``value_format`` turns a value
into its label (``yuan`` for money). Every label is escaped; the result is a ``SafeString`` holding
one ``<svg class="chart" role="img">`` with a ``<title>`` (and ``<desc>``) that name it for screen
readers. The pages print each chart's numbers in a table beside it too.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from core import clock
from core.formatting import yuan

PALETTE = ("#0b5cad", "#1d7a3a", "#a35b00", "#b3261e", "#6b3fa0")
AXIS = "#5d6675"
GRID = "#d9dde4"
TICKS = 4
WIDTH = 400  # viewBox units: close to a phone's CSS pixels, so 11-unit text stays legible there


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


def nice_step(top: int, ticks: int = TICKS) -> int:
    """The smallest step of 1, 2 or 5 × 10ⁿ with ``step * ticks >= top`` (at least 1)."""
    needed = max(1, -(-max(top, 0) // ticks))  # ceiling division in integers
    magnitude = 1
    while magnitude * 10 <= needed:
        magnitude *= 10
    for multiple in (1, 2, 5, 10):
        if multiple * magnitude >= needed:
            return multiple * magnitude
    raise AssertionError("unreachable")  # pragma: no cover


def yuan_axis(fen: int) -> str:
    """An axis label for fen: whole yuan without cents when the tick falls on a yuan."""
    if fen % 100 == 0:
        sign = "-" if fen < 0 else ""
        return f"{sign}¥{abs(fen) // 100:,}"
    return yuan(fen)


def current_month_note(label: str) -> str:
    """For a chart's last month ``label`` (``YYYY-MM``): "（截至7日）" when it is the current Beijing
    month and not over yet (the note ``line_chart`` takes as ``partial``), else ""."""
    today = clock.local_date()
    if label != f"{today.year:04d}-{today.month:02d}" or today.day == calendar.monthrange(today.year, today.month)[1]:
        return ""
    return _("(up to day %(day)s)") % {"day": today.day}


CHAR = 7  # about the width of a character of 11-unit text (CJK characters count double)


def _text_width(text: str) -> int:
    return sum(2 * CHAR if ord(ch) > 0x2E80 else CHAR for ch in str(text))


def _shorten(text: str, room: int) -> str:
    """``text`` cut to fit ``room`` units, ending in "…" when cut."""
    text = str(text)
    if _text_width(text) <= room:
        return text
    while text and _text_width(text) + CHAR > room:
        text = text[:-1]
    return text.rstrip() + "…"


def _axis_width(axis_top: int, value_format: Callable[[int], str]) -> int:
    """Room for the widest label of a y axis from 0 to ``axis_top``."""
    step = axis_top // TICKS
    return max(_text_width(value_format(step * tick)) for tick in range(TICKS + 1)) + 8


def _open(chart_id: str, title: str, width: int, height: int, desc: str, testid: str | None) -> SafeString:
    return format_html(
        '<svg class="chart" id="{id}" data-testid="{testid}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
        'role="img" aria-labelledby="{id}-title{desc_ref}" xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-title">{title}</title>{desc}',
        id=chart_id,
        testid=testid or chart_id,
        w=width,
        h=height,
        desc_ref=f" {chart_id}-desc" if desc else "",
        title=title,
        desc=format_html('<desc id="{}-desc">{}</desc>', chart_id, desc) if desc else "",
    )


def _empty(chart_id: str, title: str, width: int, testid: str | None) -> SafeString:
    height = 80
    return mark_safe(  # noqa: S308 - every part is built by format_html, which escapes
        _open(chart_id, title, width, height, "", testid)
        + format_html(
            '<text x="{}" y="{}" text-anchor="middle" class="empty">{}</text></svg>',
            width // 2,
            height // 2,
            _("No data yet."),
        )
    )


def _y_axis(
    *, left: int, right: int, top: int, bottom: int, axis_top: int, value_format: Callable[[int], str]
) -> SafeString:
    """Horizontal grid lines with their labels, from 0 at ``bottom`` to ``axis_top`` at ``top``."""
    step = axis_top // TICKS
    lines = []
    for tick in range(TICKS + 1):
        value = step * tick
        y = bottom - (bottom - top) * value // axis_top
        lines.append(
            format_html(
                '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>'
                '<text x="{}" y="{}" text-anchor="end">{}</text>',
                left,
                y,
                right,
                y,
                AXIS if tick == 0 else GRID,
                left - 4,
                y + 4,
                value_format(value),
            )
        )
    return mark_safe("".join(lines))  # noqa: S308 - joined format_html output


def bar_chart(
    rows: Sequence[tuple[str, int]],
    *,
    chart_id: str,
    title: str,
    value_format: Callable[[int], str] = str,
    desc: str = "",
    testid: str | None = None,
    width: int = WIDTH,
    label_width: int | None = None,
    value_width: int = 96,
) -> SafeString:
    """Horizontal bars: ``rows`` of ``(label, value)``, drawn top to bottom in the order given. The
    label column fits the longest label, up to a third of the width; a longer label is shortened
    with "…" (its bar's tooltip keeps it whole)."""
    if not rows:
        return _empty(chart_id, title, width, testid)
    if label_width is None:
        label_width = min(width // 3, max(_text_width(label) for label, _value in rows) + 10)
    row_height, bar_height, top = 24, 16, 8
    height = top * 2 + row_height * len(rows)
    span = width - label_width - value_width
    biggest = max(max(value for _label, value in rows), 1)
    parts = [_open(chart_id, title, width, height, desc, testid)]
    parts.append(
        format_html(
            '<line x1="{x}" y1="{y1}" x2="{x}" y2="{y2}" stroke="{c}" stroke-width="1"/>',
            x=label_width,
            y1=top,
            y2=height - top,
            c=AXIS,
        )
    )
    for index, (label, value) in enumerate(rows):
        y = top + index * row_height
        length = span * max(value, 0) // biggest
        parts.append(
            format_html(
                '<g class="bar"><title>{label}: {shown}</title>'
                '<text x="{tx}" y="{ty}" text-anchor="end">{short}</text>'
                '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}"/>'
                '<text x="{vx}" y="{ty}">{shown}</text></g>',
                label=label,
                short=_shorten(label, label_width - 10),
                shown=value_format(value),
                tx=label_width - 6,
                ty=y + (row_height + bar_height) // 2 - 2,
                x=label_width,
                y=y + (row_height - bar_height) // 2,
                w=length,
                h=bar_height,
                fill=PALETTE[0],
                vx=label_width + length + 4,
            )
        )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # noqa: S308 - joined format_html output


def histogram(
    buckets: Sequence[tuple[str, int]],
    *,
    chart_id: str,
    title: str,
    edges: Sequence[str] | None = None,
    value_format: Callable[[int], str] = str,
    desc: str = "",
    testid: str | None = None,
    width: int = WIDTH,
    height: int = 220,
) -> SafeString:
    """Adjoining vertical bars over ordered ``(bucket label, count)`` pairs. With ``edges`` (one
    more than the buckets: ``0, 10, …, 100``) the axis labels the bars' boundaries instead of their
    middles, which stays legible with many narrow buckets; the bucket labels remain the tooltips."""
    if not buckets:
        return _empty(chart_id, title, width, testid)
    axis_top = nice_step(max(value for _label, value in buckets)) * TICKS
    left = max(32, _axis_width(axis_top, value_format))
    right, top, bottom = width - 12, 12, height - 28
    slot = (right - left) // len(buckets)
    parts = [
        _open(chart_id, title, width, height, desc, testid),
        _y_axis(left=left, right=right, top=top, bottom=bottom, axis_top=axis_top, value_format=value_format),
    ]
    for index, (label, value) in enumerate(buckets):
        x = left + index * slot
        bar = (bottom - top) * max(value, 0) // axis_top
        parts.append(
            format_html(
                '<g class="bar"><title>{label}: {shown}</title>'
                '<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}" stroke="#fff" stroke-width="1"/></g>',
                label=label,
                shown=value_format(value),
                x=x,
                y=bottom - bar,
                w=slot,
                h=bar,
                fill=PALETTE[0],
            )
        )
    if edges is not None:
        ticks = [(left + index * slot, edge) for index, edge in enumerate(edges)]
    else:
        ticks = [(left + index * slot + slot // 2, label) for index, (label, _value) in enumerate(buckets)]
    parts.append(
        format_html_join(
            "",
            '<text x="{}" y="{}" text-anchor="middle">{}</text>',
            ((x, bottom + 16, label) for x, label in ticks),
        )
    )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # noqa: S308 - joined format_html output


def _labelled(xs: Sequence[int], room: int) -> list[int]:
    """Indexes of the points to label: the newest, then each earlier one at least ``room`` units
    left of the last labelled, so that no two labels touch."""
    chosen: list[int] = []
    for index in range(len(xs) - 1, -1, -1):
        if not chosen or xs[chosen[-1]] - xs[index] >= room:
            chosen.append(index)
    return chosen


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    chart_id: str,
    title: str,
    value_format: Callable[[int], str] = str,
    axis_format: Callable[[int], str] | None = None,
    y_max: int | None = None,
    positions: Sequence[int] | None = None,
    desc: str = "",
    testid: str | None = None,
    width: int = WIDTH,
    height: int = 240,
    markers: int = 60,
    partial: str = "",
) -> SafeString:
    """Series of integers over ``labels``, evenly spaced, or placed by ``positions`` (ascending
    integers such as timestamps, one per label) when the points are not evenly spaced in time.
    ``y_max`` fixes the axis top (a score's 100); otherwise it is the nice step above the largest
    value. Points get markers (each with its value as a tooltip) when there are at most ``markers``.
    ``partial`` (a note such as "（截至7日）") marks the last point as a period not over yet: the
    segment to it is dashed, its marker hollow, and the note is written under its label."""
    if not labels or not series:
        return _empty(chart_id, title, width, testid)
    legend = len(series) > 1
    if y_max is None:
        biggest = max((max(s.values, default=0) for s in series), default=0)
        axis_top = nice_step(biggest) * TICKS
    else:
        axis_top = y_max if y_max > 0 and y_max % TICKS == 0 else nice_step(y_max) * TICKS
    longest = max(_text_width(label) for label in labels)
    left = max(32, _axis_width(axis_top, axis_format or value_format), longest // 2 + 4)
    right, top, bottom = width - max(12, longest // 2 + 4), 26 if legend else 12, height - 28
    count = len(labels)

    first, last = (positions[0], positions[-1]) if positions else (0, count - 1)

    def x_of(index: int) -> int:
        if last <= first:
            return left + (right - left) // 2
        at = positions[index] if positions else index
        return left + (right - left) * (at - first) // (last - first)

    def y_of(value: int) -> int:
        return bottom - (bottom - top) * min(max(value, 0), axis_top) // axis_top

    parts = [
        _open(chart_id, title, width, height, desc, testid),
        _y_axis(
            left=left, right=right, top=top, bottom=bottom, axis_top=axis_top, value_format=axis_format or value_format
        ),
    ]
    for index in _labelled([x_of(i) for i in range(count)], longest + 8):
        parts.append(
            format_html('<text x="{}" y="{}" text-anchor="middle">{}</text>', x_of(index), bottom + 16, labels[index])
        )
    if partial:
        parts.append(
            format_html(
                '<text class="partial" data-testid="{}-partial" x="{}" y="{}" text-anchor="end" font-size="10">'
                "{}</text>",
                testid or chart_id,
                min(width - 2, x_of(count - 1) + longest // 2),
                bottom + 27,
                partial,
            )
        )
    for number, line in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        values = list(line.values[:count])
        whole = values[:-1] if partial and len(values) > 1 else values
        points = " ".join(f"{x_of(i)},{y_of(v)}" for i, v in enumerate(whole))
        parts.append(
            format_html(
                '<g class="series" data-series="{name}"><polyline points="{points}" fill="none" stroke="{c}" '
                'stroke-width="2" stroke-linejoin="round"/>',
                name=line.name,
                points=points,
                c=colour,
            )
        )
        if len(whole) < len(values):
            last = len(values) - 1
            parts.append(
                format_html(
                    '<line class="partial" x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="2" '
                    'stroke-dasharray="5 4"/>',
                    x_of(last - 1),
                    y_of(values[last - 1]),
                    x_of(last),
                    y_of(values[last]),
                    colour,
                )
            )
        if len(line.values) <= markers:
            parts.append(
                format_html_join(
                    "",
                    '<circle cx="{}" cy="{}" r="3" fill="{}" stroke="{}" stroke-width="1.5">'
                    "<title>{}: {} {}</title></circle>",
                    (
                        (
                            x_of(i),
                            y_of(v),
                            "#fff" if partial and i == count - 1 else colour,
                            colour,
                            labels[i],
                            line.name,
                            value_format(v),
                        )
                        for i, v in enumerate(line.values[:count])
                    ),
                )
            )
        parts.append(mark_safe("</g>"))
        if legend:
            x = left + number * ((right - left) // len(series))
            parts.append(
                format_html(
                    '<rect x="{}" y="6" width="12" height="12" fill="{}"/><text x="{}" y="16">{}</text>',
                    x,
                    colour,
                    x + 16,
                    line.name,
                )
            )
    parts.append(mark_safe("</svg>"))
    return mark_safe("".join(parts))  # noqa: S308 - joined format_html output
