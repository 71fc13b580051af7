"""The regulator's exports (API.md, Additions v1.1): merchants with their risk, cards, refunds,
complaints and a journal extract, as CSV (UTF-8 with a byte-order mark, so Excel opens Chinese)
and XLSX, with the filters of the matching list.

Constant memory, whatever the size: every export reads its queryset with
``.iterator(chunk_size=CHUNK)`` (a server-side cursor on PostgreSQL: ``CHUNK`` rows in memory at a
time) as ``values_list`` tuples, and turns each tuple into a row of typed cells here. CSV is written
row by row into the response as it streams. XLSX is written by openpyxl's write-only workbook
(each row goes straight to the sheet's XML on disk, strings inline, no shared-string table) into a
temporary file, which is then served as a file: memory stays flat, the disk holds the file for the
length of the download.

What people read: headers are Chinese words, money is yuan (2 decimals; numbers in XLSX) under a
"（元）" header, times are Beijing time, states and kinds are their Chinese names, and consumers'
names and phone numbers are masked (the personal information protection law's minimum necessary).

Jurisdiction: every export's queryset passes through ``_in_scope`` (one place) with the path from
its rows to their merchant; a regulator's jurisdiction narrows it there. The journal extract keeps
the entries that move money of the jurisdiction's merchants (``journal_entries_within``), each with
all its postings, so every entry shown still balances.
"""

from __future__ import annotations

import csv
import io
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO, Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import translation

from complaints.models import Complaint
from complaints.selectors import complaint_list
from consumers.models import Card
from core import clock
from core.errors import InvalidInput
from core.formatting import mask_name, mask_phone
from escrow.models import Account, JournalEntry, Posting
from merchants.models import Merchant
from merchants.registry import DISTRICTS, district_code
from refunds.models import Refund
from refunds.selectors import refunds_for_regulator
from regulator.models import RiskLevel
from regulator.selectors.audit import journal_entries_within
from regulator.selectors.jurisdiction import CITY, jurisdiction_of
from regulator.selectors.risk import regulator_merchants
from regulator.services.audit import audit_record

CHUNK = 2000  # rows per fetch from the server-side cursor
FORMATS = ("csv", "xlsx")
CSV_BOM = "\ufeff"
MONEY_FORMAT = "0.00"
TIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
CENT = Decimal("0.01")
XLSX_SHEET_ROWS = 1_048_575  # data rows a sheet holds: Excel's 1,048,576 rows, less the header
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Column kinds: how a cell is written (CSV text; XLSX number, date or text).
TEXT, MONEY, TIME, NUMBER = "text", "money", "time", "number"


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = TEXT


@dataclass
class Export:
    """One export, ready to write: its name and title, columns, the queryset of ``values_list``
    tuples (read in chunks) and the function making a row of cells from one tuple."""

    name: str
    title: str
    columns: list[Column]
    queryset: QuerySet
    make_row: Callable[[tuple], list[Any]]
    filters: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> Iterator[list[Any]]:
        for values in self.queryset.iterator(chunk_size=CHUNK):
            yield self.make_row(values)


# --- people's words ----------------------------------------------------------------------------------


def yuan(fen: int | None) -> Decimal | None:
    """Integer fen as yuan with two decimals (exact: ``Decimal``)."""
    return None if fen is None else (Decimal(fen) / 100).quantize(CENT)


def beijing(moment: datetime | None) -> datetime | None:
    """An aware moment as a naive Beijing wall-clock time (what a spreadsheet shows)."""
    return None if moment is None else clock.local(moment).replace(tzinfo=None)


def _labels(choices) -> dict[str, str]:
    """``{value: Chinese label}`` of a model's choices (read once per export, not per row)."""
    with translation.override("zh-hans"):
        return {value: str(label) for value, label in choices}


def _yes_no(value: bool | None) -> str:
    return "是" if value else "否"


def _district(code: str) -> str:
    return DISTRICTS[code][0] if code in DISTRICTS else code


# --- filters -------------------------------------------------------------------------------------------


def _choice(params: dict[str, str], name: str, values, errors: dict) -> str | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    if value not in values:
        errors[name] = [f"one of {', '.join(values)}"]
        return None
    return value


def _bool(params: dict[str, str], name: str, errors: dict) -> bool | None:
    value = (params.get(name) or "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    errors[name] = ["true or false"]
    return None


def _merchant(params: dict[str, str], errors: dict) -> Any | None:
    value = (params.get("merchant") or "").strip()
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        errors["merchant"] = ["a merchant id"]
        return None


def _district_param(params: dict[str, str], errors: dict) -> str | None:
    value = (params.get("district") or "").strip()
    if not value:
        return None
    code = district_code(value)
    if code is None:
        errors["district"] = ["a Beijing district code, e.g. 110105"]
    return code


def _day(params: dict[str, str], name: str, errors: dict) -> date | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = ["a date, YYYY-MM-DD (Beijing)"]
        return None


# --- jurisdiction: the one place a regulator's scope narrows every export -----------------------------

# From each export's rows to their merchant ("" for merchants themselves). The journal's postings
# are kept by their entry (``journal_entries_within``): an entry of the jurisdiction is shown whole.
SCOPE_PATHS: dict[str, str] = {
    "merchants": "",
    "cards": "merchant__",
    "refunds": "card__merchant__",
    "complaints": "merchant__",
}


def _in_scope(queryset: QuerySet, *, name: str, user) -> QuerySet:
    """The rows of export ``name`` within ``user``'s jurisdiction (``jurisdiction_of``): of its
    merchants, reached by ``SCOPE_PATHS[name]``; the journal's, by their entry."""
    if user.role != "regulator":
        return queryset.none()
    jurisdiction = jurisdiction_of(user)
    if jurisdiction.city_wide:
        return queryset
    if name == "journal":
        return queryset.filter(entry__in=journal_entries_within(jurisdiction))
    return jurisdiction.narrow(queryset, path=SCOPE_PATHS[name])


# --- the five exports ----------------------------------------------------------------------------------


def _merchants(params: dict[str, str], user, errors: dict) -> Export:
    filters: dict[str, Any] = {
        "risk_level": _choice(params, "risk_level", RiskLevel.values, errors),
        "district": _district_param(params, errors),
        "category": _choice(params, "category", Merchant.Category.values, errors),
        "flagged": _bool(params, "flagged", errors),
    }
    if errors:
        raise InvalidInput(errors=errors)
    # The whole city's here: ``_in_scope`` narrows every export to the user's jurisdiction.
    rows = regulator_merchants(jurisdiction=CITY, **filters, ordering="-risk_score").values_list(
        "id",
        "name",
        "license_number",
        "district",
        "category",
        "status",
        "risk_score",
        "risk_level",
        "flagged",
        "sales_frozen",
        "releases_frozen",
        "escrow_outstanding",
        "active_cards",
        "complaints_90d",
        "risk_computed_at",
    )
    categories, statuses, levels = (
        _labels(Merchant.Category.choices),
        _labels(Merchant.Status.choices),
        _labels(RiskLevel.choices),
    )

    def make_row(v: tuple) -> list[Any]:
        (pk, name, licence, district, category, status, score, level, flagged, sales, releases, escrow) = v[:12]
        return [
            str(pk),
            name,
            licence,
            _district(district),
            categories.get(category, category),
            statuses.get(status, status),
            score,
            levels.get(level, level),
            _yes_no(flagged),
            _yes_no(sales),
            _yes_no(releases),
            yuan(escrow),
            v[12],
            v[13],
            beijing(v[14]),
        ]

    columns = [
        Column("商户编号"),
        Column("商户名称"),
        Column("统一社会信用代码"),
        Column("所在区"),
        Column("行业"),
        Column("经营状态"),
        Column("风险分", NUMBER),
        Column("风险等级"),
        Column("已警示"),
        Column("暂停售卡"),
        Column("暂停放款"),
        Column("托管余额（元）", MONEY),
        Column("在用卡数", NUMBER),
        Column("近90天投诉数", NUMBER),
        Column("风险评估时间", TIME),
    ]
    return Export("merchants", "商户", columns, rows, make_row, filters)


def _cards(params: dict[str, str], user, errors: dict) -> Export:
    filters: dict[str, Any] = {
        "merchant": _merchant(params, errors),
        "state": _choice(params, "state", Card.State.values, errors),
    }
    if errors:
        raise InvalidInput(errors=errors)
    cards = Card.objects.all()
    if filters["merchant"] is not None:
        cards = cards.filter(merchant_id=filters["merchant"])
    if filters["state"] is not None:
        cards = cards.filter(state=filters["state"])
    rows = cards.order_by("created_at", "pk").values_list(
        "id",
        "merchant__name",
        "consumer__display_name",
        "consumer__phone",
        "kind",
        "state",
        "price",
        "released_total",
        "refunded_total",
        "paid_at",
        "valid_until",
    )
    kinds, states = _labels(Card._meta.get_field("kind").choices), _labels(Card.State.choices)

    def make_row(v: tuple) -> list[Any]:
        pk, merchant, holder, phone, kind, state, price, released, refunded, paid_at, valid_until = v
        held = price - released - refunded if state in Card.HOLDING else 0
        return [
            str(pk),
            merchant,
            mask_name(holder),
            mask_phone(phone),
            kinds.get(kind, kind),
            states.get(state, state),
            yuan(price),
            yuan(released),
            yuan(refunded),
            yuan(held),
            beijing(paid_at),
            beijing(valid_until),
        ]

    columns = [
        Column("卡号"),
        Column("商户名称"),
        Column("持卡人"),
        Column("手机号码"),
        Column("卡种"),
        Column("状态"),
        Column("售价（元）", MONEY),
        Column("已放款（元）", MONEY),
        Column("已退款（元）", MONEY),
        Column("托管余额（元）", MONEY),
        Column("付款时间", TIME),
        Column("有效期至", TIME),
    ]
    return Export("cards", "预付卡", columns, rows, make_row, filters)


def _refunds(params: dict[str, str], user, errors: dict) -> Export:
    filters: dict[str, Any] = {
        "state": _choice(params, "state", Refund.State.values, errors),
        "overdue": _bool(params, "overdue", errors),
    }
    if errors:
        raise InvalidInput(errors=errors)
    rows = refunds_for_regulator(**filters).values_list(
        "id",
        "card__merchant__name",
        "card_id",
        "card__consumer__display_name",
        "reason",
        "state",
        "amount",
        "fee",
        "created_at",
        "due_by",
        "paid_at",
        "overdue_at",
        "attempts",
    )
    reasons, states = _labels(Refund.Reason.choices), _labels(Refund.State.choices)
    unpaid = (Refund.State.PENDING, Refund.State.FAILED)
    now = clock.now()

    def make_row(v: tuple) -> list[Any]:
        pk, merchant, card, holder, reason, state, amount, fee, created, due_by, paid_at, overdue_at, attempts = v
        late = overdue_at is not None or (state in unpaid and due_by < now)
        return [
            str(pk),
            merchant,
            str(card),
            mask_name(holder),
            reasons.get(reason, reason),
            states.get(state, state),
            yuan(amount),
            yuan(fee),
            beijing(created),
            beijing(due_by),
            beijing(paid_at),
            _yes_no(late),
            attempts,
        ]

    columns = [
        Column("退款编号"),
        Column("商户名称"),
        Column("卡号"),
        Column("持卡人"),
        Column("退款原因"),
        Column("状态"),
        Column("退款金额（元）", MONEY),
        Column("手续费（元）", MONEY),
        Column("申请时间", TIME),
        Column("应付期限", TIME),
        Column("支付时间", TIME),
        Column("是否逾期"),
        Column("发送次数", NUMBER),
    ]
    return Export("refunds", "退款", columns, rows, make_row, filters)


def _complaints(params: dict[str, str], user, errors: dict) -> Export:
    filters: dict[str, Any] = {
        "state": _choice(params, "state", Complaint.State.values, errors),
        "merchant_id": _merchant(params, errors),
        "district": _district_param(params, errors),
        "category": _choice(params, "category", Complaint.Category.values, errors),
        "source": _choice(params, "source", Complaint.Source.values, errors),
    }
    if errors:
        raise InvalidInput(errors=errors)
    rows = (
        complaint_list(user=user, **filters)
        .order_by("-created_at", "pk")
        .values_list(
            "id",
            "merchant__name",
            "merchant__district",
            "category",
            "source",
            "urgent",
            "state",
            "consumer__display_name",
            "consumer__phone",
            "hotline_reference",
            "created_at",
            "respond_by",
            "responded_at",
            "closed_at",
        )
    )
    categories, sources = _labels(Complaint.Category.choices), _labels(Complaint.Source.choices)
    states = _labels(Complaint.State.choices)

    def make_row(v: tuple) -> list[Any]:
        pk, merchant, district, category, source, urgent, state, name, phone, reference = v[:10]
        return [
            str(pk),
            merchant,
            _district(district),
            categories.get(category, category),
            sources.get(source, source),
            _yes_no(urgent),
            states.get(state, state),
            mask_name(name),
            mask_phone(phone),
            reference or "",
            beijing(v[10]),
            beijing(v[11]),
            beijing(v[12]),
            beijing(v[13]),
        ]

    columns = [
        Column("投诉编号"),
        Column("商户名称"),
        Column("所在区"),
        Column("投诉类别"),
        Column("来源"),
        Column("紧急"),
        Column("状态"),
        Column("投诉人"),
        Column("手机号码"),
        Column("12345工单号"),
        Column("受理时间", TIME),
        Column("答复期限", TIME),
        Column("答复时间", TIME),
        Column("办结时间", TIME),
    ]
    return Export("complaints", "投诉", columns, rows, make_row, filters)


def _journal(params: dict[str, str], user, errors: dict) -> Export:
    first, last = _day(params, "from", errors), _day(params, "to", errors)
    code = _choice(params, "code", JournalEntry.Code.values, errors)
    if first and last and first > last:
        errors["to"] = ["on or after from"]
    if errors:
        raise InvalidInput(errors=errors)
    filters = {"from": first, "to": last, "code": code}
    postings = Posting.objects.all()
    if first:
        postings = postings.filter(entry__created_at__gte=clock.local_midnight(first))
    if last:
        postings = postings.filter(entry__created_at__lt=clock.local_midnight(last + timedelta(days=1)))
    if code:
        postings = postings.filter(entry__code=code)
    rows = postings.order_by("entry_id", "pk").values_list(
        "entry_id",
        "entry__created_at",
        "entry__code",
        "account_id",
        "account__kind",
        "account__name",
        "amount",
        "entry__memo",
        "entry__chain",
        "entry__seq",
        "entry__hash",
    )
    codes, kinds = _labels(JournalEntry.Code.choices), _labels(Account.Kind.choices)

    def make_row(v: tuple) -> list[Any]:
        entry, created, code, account, kind, name, amount, memo, chain, seq, digest = v
        return [
            entry,
            beijing(created),
            codes.get(code, code),
            account,
            kinds.get(kind, kind),
            name,
            yuan(amount if amount > 0 else None),
            yuan(-amount if amount < 0 else None),
            memo,
            chain,
            seq,
            digest,
        ]

    columns = [
        Column("分录编号", NUMBER),
        Column("记账时间", TIME),
        Column("业务类型"),
        Column("账户编号", NUMBER),
        Column("账户类型"),
        Column("账户名称"),
        Column("借方金额（元）", MONEY),
        Column("贷方金额（元）", MONEY),
        Column("摘要"),
        Column("链", NUMBER),
        Column("序号", NUMBER),
        Column("哈希"),
    ]
    return Export("journal", "资金流水", columns, rows, make_row, {**filters})


BUILDERS: dict[str, Callable[[dict[str, str], Any, dict], Export]] = {
    "merchants": _merchants,
    "cards": _cards,
    "refunds": _refunds,
    "complaints": _complaints,
    "journal": _journal,
}
NAMES = tuple(BUILDERS)


def export_build(*, name: str, params: dict[str, str], user) -> Export:
    """Export ``name`` for ``user`` with the list's filters from ``params`` (a bad value is
    ``InvalidInput``, as the lists answer), within the user's jurisdiction."""
    export = BUILDERS[name](params, user, {})
    export.queryset = _in_scope(export.queryset, name=name, user=user)
    return export


def export_count(*, name: str, params: dict[str, str], user) -> int:
    """How many rows export ``name`` would have (one ``COUNT``; the pages show it as "约 N 行")."""
    return export_build(name=name, params=params, user=user).queryset.count()


def _shown_filters(export: Export) -> dict[str, str]:
    return {key: str(value) for key, value in export.filters.items() if value is not None}


def export_recorded(*, export: Export, file_format: str, actor_id: int, rows: int, complete: bool = True) -> None:
    """The export's line in the audit log: who, which export, its filters and how many rows left."""
    with transaction.atomic():
        audit_record(
            verb="export",
            actor_id=actor_id,
            target=f"export:{export.name}.{file_format}",
            reason="" if complete else "incomplete: the download stopped",
            changes={"filters": [None, _shown_filters(export)], "rows": [None, rows]},
        )


# --- writers -------------------------------------------------------------------------------------------


def _csv_cell(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind == MONEY:
        return f"{value:.2f}"
    if kind == TIME:
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


class _Line(io.StringIO):
    """A buffer the csv writer writes one row into; the row is taken out and the buffer emptied."""

    def take(self) -> str:
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        return text


def csv_stream(export: Export, *, on_done: Callable[[int, bool], None] | None = None) -> Iterator[bytes]:
    """The export as CSV: a BOM and the header row, then one encoded chunk per ``CHUNK`` rows.
    ``on_done(rows, complete)`` runs at the end, or when the download stops half-way."""
    line = _Line()
    writer = csv.writer(line, lineterminator="\r\n")
    writer.writerow([column.header for column in export.columns])
    yield (CSV_BOM + line.take()).encode("utf-8")
    kinds = [column.kind for column in export.columns]
    written, complete = 0, False
    try:
        for row in export.rows():
            writer.writerow([_csv_cell(value, kind) for value, kind in zip(row, kinds, strict=True)])
            written += 1
            if written % CHUNK == 0:
                yield line.take().encode("utf-8")
        tail = line.take()
        if tail:
            yield tail.encode("utf-8")
        complete = True
    finally:
        if on_done is not None:
            on_done(written, complete)


def xlsx_write(export: Export, target: IO[bytes] | str) -> int:
    """The export as an XLSX workbook into ``target`` (a path or a binary file), written by
    openpyxl's write-only workbook row by row; returns the rows written."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)
    kinds = [column.kind for column in export.columns]

    def new_sheet(number: int):
        sheet = book.create_sheet(export.title if number == 1 else f"{export.title}（{number}）")
        header = []
        for column in export.columns:
            cell = WriteOnlyCell(sheet, value=column.header)
            cell.font = bold
            header.append(cell)
        sheet.append(header)
        return sheet

    sheets = 1
    sheet = new_sheet(sheets)
    written = 0
    for row in export.rows():
        if written and written % XLSX_SHEET_ROWS == 0:  # Excel's limit: the rest on the next sheet
            sheets += 1
            sheet = new_sheet(sheets)
        cells: list[Any] = []
        for value, kind in zip(row, kinds, strict=True):
            if value is not None and kind in (MONEY, TIME):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = MONEY_FORMAT if kind == MONEY else TIME_FORMAT
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
        written += 1
    book.save(target)
    return written


def xlsx_file(export: Export) -> tuple[IO[bytes], int]:
    """The export written to an anonymous temporary file (deleted when closed), rewound; and its rows."""
    handle = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - FileResponse closes it after the download
    try:
        written = xlsx_write(export, handle)
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    return handle, written


def export_filename(export: Export, file_format: str) -> str:
    return f"{export.name}-{clock.local_date():%Y%m%d}.{file_format}"
