"""Formatting for people: money in yuan, fees as a percentage, moments in Beijing time. Integer
arithmetic only (money is integer fen)."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import formats, translation

from core import clock

CURRENCY = "cny"  # the platform's one currency (ISO 4217, as the API and Stripe spell it): every amount is fen of it


def yuan(fen: int) -> str:
    """``123456`` fen → ``"¥1,234.56"``."""
    sign, fen = ("-", -fen) if fen < 0 else ("", fen)
    return f"{sign}¥{fen // 100:,}.{fen % 100:02d}"


def percent(bps: int) -> str:
    """Basis points as a percentage: ``150`` → ``"1.5%"``, ``200`` → ``"2%"``, ``125`` → ``"1.25%"``."""
    whole, hundredths = divmod(bps, 100)
    return f"{whole}.{hundredths:02d}".rstrip("0").rstrip(".") + "%"


def beijing_time(moment: datetime) -> str:
    """``"2026年3月10日 00:00（北京时间）"``."""
    local = clock.local(moment)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}（北京时间）"


def _in_beijing(moment: datetime | date) -> datetime | date:
    return clock.local(moment) if isinstance(moment, datetime) else moment


def beijing_date(moment: datetime | date, *, language: str | None = None) -> str:
    """The Beijing calendar day in the active language (or ``language``): ``"2026年3月10日"``,
    ``"March 10, 2026"`` (the locale's ``DATE_FORMAT``, as templates print ``|date:"DATE_FORMAT"``)."""
    with translation.override(language or translation.get_language()):
        return formats.date_format(_in_beijing(moment), "DATE_FORMAT")


def beijing_datetime(moment: datetime, *, language: str | None = None) -> str:
    """A moment on a Beijing wall clock in the active language (or ``language``):
    ``"2026年3月10日 14:05"``, ``"March 10, 2026, 2:05 p.m."`` (the locale's ``DATETIME_FORMAT``)."""
    with translation.override(language or translation.get_language()):
        return formats.date_format(clock.local(moment), "DATETIME_FORMAT")


# --- consumers' personal information, masked (the personal information protection law's "minimum
# necessary"): regulators' lists and exports show these; the full name and number are shown only
# inside a case that needs them, and that showing is in the audit log.


def mask_phone(phone: str | None) -> str:
    """``13812341234`` → ``138****1234``: the last four digits and the first three of a mobile number;
    a shorter number keeps its last four at most."""
    phone = (phone or "").strip()
    if not phone:
        return ""
    if len(phone) < 8:
        return "****" + phone[-4:] if len(phone) > 4 else "****"
    return f"{phone[:-8]}****{phone[-4:]}"


def mask_name(name: str | None) -> str:
    """The first character and one ``*`` per character hidden: ``张三`` → ``张*``, ``王小明`` → ``王**``,
    ``欧阳娜娜`` → ``欧***`` (a one-character name still hides one: ``李`` → ``李*``)."""
    name = (name or "").strip()
    if not name:
        return ""
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_account(username: str | None) -> str:
    """A consumer's login name, masked: one that is a phone number as ``mask_phone``; any other as its
    first character and ``***`` (its length hidden too)."""
    username = (username or "").strip()
    if not username:
        return ""
    if username.isdigit() and len(username) >= 8:
        return mask_phone(username)
    return f"{username[0]}***"
