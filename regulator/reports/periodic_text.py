"""The periodic report's words, shared by its PDF, its XLSX and the pages: the jurisdiction and the
requester in words, district and category names, rates as percentages (integer arithmetic)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from merchants.registry import DISTRICTS
from regulator.reports.names import CATEGORY_NAMES, CITY_NAME, SCHEDULED_JOB


def district_label(code: str) -> str:
    return DISTRICTS[code][0] if code in DISTRICTS else code


def category_label(code: str) -> str:
    return CATEGORY_NAMES.get(code, code)


def jurisdiction_label(districts: Sequence[str] | None, categories: Sequence[str] | None) -> str:
    """``全市``, ``朝阳区、海淀区``, ``全市（健身、教育培训）`` or ``朝阳区（健身）``."""
    where = "、".join(district_label(code) for code in districts) if districts is not None else CITY_NAME
    if categories is None:
        return where
    return f"{where}（{'、'.join(category_label(code) for code in categories)}）"


def requester_label(username: str | None) -> str:
    return username or SCHEDULED_JOB


def rate_tenths(part: int, whole: int) -> int | None:
    """``part / whole`` in tenths of a percent, rounded half up in integers; None when ``whole`` is 0."""
    if whole <= 0:
        return None
    return (part * 1000 + whole // 2) // whole


def rate(part: int, whole: int) -> str:
    """``87.5%``, ``100%``, or ``—`` when there is nothing to count."""
    tenths = rate_tenths(part, whole)
    if tenths is None:
        return "—"
    whole_part, tenth = divmod(tenths, 10)
    return f"{whole_part}%" if tenth == 0 else f"{whole_part}.{tenth}%"


def money(fen: int) -> str:
    """Fen as yuan for a table whose header says （元）: ``1,234.56``, ``-0.50``."""
    sign, fen = ("-", -fen) if fen < 0 else ("", fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def report_filename(*, slug: str, jurisdiction_key: str, kind: str) -> str:
    """``periodic-report-2026-Q1.pdf`` for the city, ``periodic-report-2026-03-districts-110105.xlsx``
    for a district: ASCII, for the download's name."""
    where = "" if jurisdiction_key == "all" else "-" + re.sub(r"[^A-Za-z0-9]+", "-", jurisdiction_key).strip("-")
    return f"periodic-report-{slug}{where}.{kind}"
