"""A merchant's daily settlement statement as a PDF (商户资金结算对账单).

The statement lists every journal line its settlement summed: each release (a confirmed service or
a pass's daily accrual) and each refund's handling fee credited to the merchant's settlement account
in the window ``(since, cutoff]``, then the refunds of the merchant's cards in the window, the
totals and the payout. The totals printed are the settlement's stored figures; the lines are read
again from the journal, and should their sums ever differ the statement says so in red.

It is built on the PDF foundation (``core.pdf``: the embedded CJK font, the A4 template, the
shared tables and the page footer); money is integer fen formatted without floats and times are
Beijing time. A statement can run to
thousands of lines: the tables are ``LongTable`` with their header repeated on every page, and every
page carries "第 n 页 / 共 N 页" in its footer.

The statement is the merchant's, but it shows the cards' ids and their refunds: a page that shows
several apps' data lives in the highest of them (HOUSE.md), so it is the refunds app's, with the
routes that serve it (``refunds.api``, ``refunds.web``; their URLs stay under the merchant's).
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Min, OuterRef, Subquery
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer, Table

from consumers.models import Card
from core import clock
from core.formatting import beijing_datetime, beijing_time, yuan
from core.pdf import HEADING, NOTE, SUBTITLE, WARNING, WIDTH, document, p, page_canvas, pairs_table, ruled_table
from core.pdf import TITLE as TITLE_STYLE
from escrow.models import JournalEntry, Posting
from merchants.models import Settlement
from merchants.registry import district_name
from merchants.selectors import merchant_particulars_on
from refunds.models import Refund

TITLE = "商户资金结算对账单"

CODE_NAMES = {JournalEntry.Code.RELEASE: "服务划付", JournalEntry.Code.FEE: "退款手续费"}
REASON_NAMES = {
    Refund.Reason.COOLING_OFF: "冷静期退款",
    Refund.Reason.SMALL_BALANCE: "小额余额退款",
    Refund.Reason.VOLUNTARY: "自愿退款",
    Refund.Reason.MERCHANT_CLOSURE: "商户停业退款",
}
PAYOUT_STATE_NAMES = {
    Settlement.PayoutState.PENDING: "待付款",
    Settlement.PayoutState.PAID: "已付款",
    Settlement.PayoutState.HELD: "暂缓付款",
    Settlement.PayoutState.FAILED: "付款失败",
}


# --- reads -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One journal line of a settlement: ``amount`` fen credited to the merchant by entry ``entry_id``
    (``code`` release or fee) at ``created_at``, out of the escrow of card ``card_id``."""

    entry_id: int
    code: str
    created_at: datetime
    amount: int
    card_id: uuid.UUID | None  # None if the entry's other leg is not a card's escrow


def settlement_statement_lines(*, settlement: Settlement) -> list[StatementLine]:
    """Selector: the releases and refund fees ``settlement`` summed, oldest first.

    They are the postings on the merchant's settlement account whose entry has code release or fee
    and ``since < created_at <= cutoff`` (the window and codes of ``settlement_run``). Each line's
    card is the owner of the escrow account on the entry's other leg. One query: the merchant's
    account is joined and the card is a correlated subquery, so nothing is read per line.
    """
    card_of_entry = Card.objects.filter(
        escrow_account_id__in=Posting.objects.filter(entry_id=OuterRef(OuterRef("entry_id"))).values("account_id")
    ).values("pk")[:1]
    rows = (
        Posting.objects.filter(
            account__merchant__pk=settlement.merchant_id,
            entry__code__in=(JournalEntry.Code.RELEASE, JournalEntry.Code.FEE),
            entry__created_at__gt=settlement.since,
            entry__created_at__lte=settlement.cutoff,
        )
        .annotate(code=F("entry__code"), created_at=F("entry__created_at"), card_id=Subquery(card_of_entry))
        .order_by("entry__created_at", "entry_id")
        .values_list("entry_id", "code", "created_at", "amount", "card_id")
    )
    return [
        StatementLine(entry_id=entry_id, code=code, created_at=created_at, amount=-amount, card_id=card_id)
        for entry_id, code, created_at, amount, card_id in rows
    ]


def settlement_statement_refunds(*, settlement: Settlement) -> list[Refund]:
    """Selector: the refunds of the merchant's cards booked in the settlement's window, oldest first
    (the ones ``settlement.refunds_count`` counts)."""
    return list(
        Refund.objects.filter(
            card__merchant_id=settlement.merchant_id,
            created_at__gt=settlement.since,
            created_at__lte=settlement.cutoff,
        )
        .only("card_id", "reason", "amount", "fee", "created_at")
        .order_by("created_at", "id")
    )


def settlement_period_start(*, settlement: Settlement) -> datetime:
    """Selector: where the statement's period starts. A merchant's first settlement has no earlier
    one, and its window opens at the settlement run's epoch, long before the merchant existed: the
    period then starts at 00:00 (Beijing time) of the merchant's first day of business, the earliest
    of its creation, its first card paid and its first settlement posting."""
    merchant = settlement.merchant
    firsts = [
        merchant.created_at,
        Card.objects.filter(merchant_id=merchant.pk).aggregate(first=Min("paid_at"))["first"],
        Posting.objects.filter(account_id=merchant.settlement_account_id).aggregate(first=Min("entry__created_at"))[
            "first"
        ],
    ]
    first_day = clock.local_midnight(clock.local_date(min(moment for moment in firsts if moment is not None)))
    return max(settlement.since, min(first_day, settlement.cutoff))


# --- layout ----------------------------------------------------------------------------------


def _short(card_id) -> str:
    return str(card_id)[:8] if card_id else "—"


def _moment(moment: datetime | None) -> str:
    """``"2026-03-02 11:00:05"`` in Beijing time: the compact form for table rows."""
    return beijing_datetime(moment, language="zh-hans") if moment else "无"


def _summary(settlement: Settlement, releases: list[StatementLine], fees: list[StatementLine]) -> list[Flowable]:
    rows = [
        ["服务划付", f"{settlement.releases_count} 笔", yuan(settlement.released)],
        ["退款手续费", f"{len(fees)} 笔", yuan(settlement.fees)],
        ["应付商户合计", "", yuan(settlement.payout_amount)],
    ]
    table = ruled_table(["项目", "笔数", "金额"], rows, [WIDTH - 80 * mm, 30 * mm, 50 * mm], right=1, totals=1)
    story: list[Flowable] = [table]
    mismatches = [
        name
        for name, stored, listed in (
            ("服务划付", (settlement.releases_count, settlement.released), (len(releases), _sum(releases))),
            ("退款手续费", settlement.fees, _sum(fees)),
        )
        if stored != listed
    ]
    if mismatches:
        story += [
            Spacer(0, 2 * mm),
            p(f"注意：{'、'.join(mismatches)}明细合计与结算金额不符，请联系平台核对。", WARNING),
        ]
    return story


def _sum(lines: list[StatementLine]) -> int:
    return sum(line.amount for line in lines)


def _lines_table(lines: list[StatementLine], *, total_label: str) -> Flowable:
    widths = [16 * mm, 30 * mm, 46 * mm, 36 * mm, WIDTH - 128 * mm]
    rows = [
        [str(number), _short(line.card_id), _moment(line.created_at), f"#{line.entry_id}", yuan(line.amount)]
        for number, line in enumerate(lines, start=1)
    ]
    rows.append([total_label, "", "", f"{len(lines)} 笔", yuan(_sum(lines))])
    return ruled_table(["序号", "卡号", "时间（北京时间）", "分录号", "金额"], rows, widths, right=3, totals=1)


def _refunds_table(refunds: list[Refund]) -> Flowable:
    widths = [12 * mm, 24 * mm, 28 * mm, 40 * mm, 35 * mm, WIDTH - 139 * mm]
    rows = [
        [
            str(number),
            _short(refund.card_id),
            REASON_NAMES.get(refund.reason, refund.reason),
            _moment(refund.created_at),
            yuan(refund.amount),
            yuan(refund.fee),
        ]
        for number, refund in enumerate(refunds, start=1)
    ]
    rows.append(
        [
            "合计",
            "",
            f"{len(refunds)} 笔",
            "",
            yuan(sum(refund.amount for refund in refunds)),
            yuan(sum(refund.fee for refund in refunds)),
        ]
    )
    return ruled_table(
        ["序号", "卡号", "退款原因", "退款时间（北京时间）", "退还消费者", "手续费"], rows, widths, right=4, totals=1
    )


def _payout(settlement: Settlement) -> Table:
    pairs = [
        ("付款状态", PAYOUT_STATE_NAMES.get(settlement.payout_state, settlement.payout_state)),
        ("付款金额", yuan(settlement.payout_amount)),
        ("付款参考号", settlement.payout_reference or "—"),
        ("付款时间", beijing_time(settlement.paid_at) if settlement.paid_at else "—"),
    ]
    if settlement.payout_state in (Settlement.PayoutState.HELD, Settlement.PayoutState.FAILED):
        pairs.append(("原因", settlement.held_reason or "—"))
    return pairs_table(pairs, label_width=24 * mm)


def settlement_statement_pdf(*, settlement: Settlement) -> bytes:
    """The statement of ``settlement`` for its merchant: an A4 PDF. It names the operator and the
    district of the day settled (a change of operator or a move after it does not rename it)."""
    merchant = merchant_particulars_on(merchant=settlement.merchant, day=settlement.date)
    lines = settlement_statement_lines(settlement=settlement)
    releases = [line for line in lines if line.code == JournalEntry.Code.RELEASE]
    fees = [line for line in lines if line.code == JournalEntry.Code.FEE]
    refunds = settlement_statement_refunds(settlement=settlement)
    day = settlement.date
    day_text = f"{day.year}年{day.month}月{day.day}日"
    since = settlement_period_start(settlement=settlement)

    buffer = io.BytesIO()
    doc = document(buffer, title=f"{TITLE} {day.isoformat()}", subject=f"{merchant.name} {day.isoformat()}")
    story: list[Flowable] = [
        p(TITLE, TITLE_STYLE),
        p(f"结算单号：{settlement.pk}", SUBTITLE),
        Spacer(0, 4 * mm),
        pairs_table(
            [
                ("商户名称", merchant.name),
                ("统一社会信用代码", merchant.license_number),
                ("结算日期", day_text),
                ("所在区", district_name(merchant.district, "zh-hans")),
                ("结算周期", f"{beijing_time(since)} 至 {beijing_time(settlement.cutoff)}"),
            ]
        ),
        Spacer(0, 1.5 * mm),
        p(
            "结算周期不含起始时刻、含截止时刻。本期结算金额为周期内记入商户结算账户的服务划付款项与退款手续费之和，"
            f"经核对后支付至商户账户。本对账单生成于{beijing_time(clock.now())}。",
            NOTE,
        ),
        p("一、结算汇总", HEADING),
        *_summary(settlement, releases, fees),
        p("二、付款信息", HEADING),
        _payout(settlement),
        p(f"三、服务划付明细（{len(releases)} 笔）", HEADING),
        _lines_table(releases, total_label="合计") if releases else p("本期无服务划付。"),
        p(f"四、退款手续费明细（{len(fees)} 笔）", HEADING),
        _lines_table(fees, total_label="合计") if fees else p("本期无退款手续费。"),
        p(f"五、本期退款记录（{len(refunds)} 笔）", HEADING),
        _refunds_table(refunds) if refunds else p("本期无退款。"),
        Spacer(0, 1.5 * mm),
        p("退款款项由托管账户直接退还消费者，不计入商户结算金额；其中手续费归商户所有，已列入第四项。", NOTE),
    ]
    footer = f"{TITLE} · {merchant.name} · {day_text}"
    doc.build(story, canvasmaker=page_canvas(footer))
    return buffer.getvalue()
