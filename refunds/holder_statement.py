"""The holder's statement of one card (持卡人对账单): every movement that touched it, on its page, in
the API (``GET /api/v1/cards/{id}/statement``) and as a PDF.

Each line is a journal entry of the card's escrow account (``escrow.selectors.account_entries``):
the purchase that put the price in escrow, each release to the merchant (a confirmed service, a
pass's day, an upheld dispute), a refund's fee, the refund, and the refund's payment to the holder
(refunds payable → custody, named by its key), with Beijing time, the amount in yuan, what it was in
words, the escrow left after it and the entry's hash, by which the regulator's ledger check vouches
for it (``GET /api/v1/regulator/ledger/verify`` recomputes every hash). Lines of other kinds join
through ``LINE_SOURCES``: each is a function of the card giving its lines, merged in time order
(transfers of the card, ``consumers``' ``CardTransfer``, join there; they carry no journal entry).

The statement shows several apps' data (the ledger, the card, its refund), so it lives in the
highest of them (HOUSE.md): here, beside the card's page.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

from django.utils.translation import gettext_lazy as _
from django.utils.translation import override, pgettext_lazy
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer

from consumers.models import Card
from core import clock
from core.formatting import beijing_datetime, beijing_time, yuan
from core.pdf import BODY, NOTE, SUBTITLE, WIDTH, document, p, page_canvas, pairs_table, ruled_table
from core.pdf import HEADING as HEADING_STYLE
from core.pdf import TITLE as TITLE_STYLE
from escrow.models import JournalEntry
from escrow.selectors import account_entries
from refunds.models import Refund

TITLE = "预付卡持卡人对账单"

# What a line was, by its journal entry (its code, and for a release the key's prefix: the key
# says which rule made it).
KIND_LABELS = {
    "purchase": pgettext_lazy("holder's statement", "Paid into escrow"),
    "service": _("Service confirmed: released to the merchant"),
    "pass_day": _("Pass day: released to the merchant"),
    "dispute": _("Dispute upheld: released to the merchant"),
    "release": _("Released to the merchant"),
    "fee": _("Refund fee to the merchant"),
    "refund": _("Refund booked for you"),
    "refund_paid": _("Refund paid to you"),
    "correction": _("Correction"),
    "payout": _("Payout"),
}
STATEMENT_KINDS = tuple(KIND_LABELS)
RELEASE_KINDS = {"redemption": "service", "accrual": "pass_day", "dispute": "dispute"}


@dataclass(frozen=True)
class StatementLine:
    at: datetime
    kind: str  # a key of KIND_LABELS
    amount: int  # fen, the money the line moved
    escrow_change: int  # fen into (+) or out of (-) the card's escrow; 0: escrow untouched
    entry_id: int | None = None
    entry_hash: str = ""  # the journal entry's; "" for a line that is no journal entry
    escrow_after: int | None = None  # set when the lines are merged

    @property
    def label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))


def _kind(entry_code: str, key: str) -> str:
    if entry_code == JournalEntry.Code.RELEASE:
        return RELEASE_KINDS.get(key.partition(":")[0], "release")
    return entry_code


def _ledger_lines(card: Card) -> list[StatementLine]:
    """The card's journal entries: those on its escrow account, and its refund's payment out."""
    paid_keys = [f"refund-paid:{pk}" for pk in Refund.objects.filter(card=card).values_list("pk", flat=True)]
    return [
        StatementLine(
            at=entry.created_at,
            kind=_kind(entry.code, entry.idempotency_key),
            amount=abs(entry.amount) if entry.amount else entry.moved,
            escrow_change=-entry.amount,  # the escrow is a credit-side account: a credit raises it
            entry_id=entry.entry_id,
            entry_hash=entry.hash,
        )
        for entry in account_entries(account_id=card.escrow_account_id, entry_keys=paid_keys)
    ]


# Where the statement's lines come from; another kind of line (a transfer of the card) is a function
# added here.
LINE_SOURCES: list[Callable[[Card], Iterable[StatementLine]]] = [_ledger_lines]


def holder_statement_lines(*, card: Card) -> list[StatementLine]:
    """Selector: every line of the card's statement, oldest first, each with the escrow left after it."""
    lines = sorted(
        (line for source in LINE_SOURCES for line in source(card)),
        key=lambda line: (line.at, line.entry_id or 0),
    )
    escrow = 0
    merged = []
    for line in lines:
        escrow += line.escrow_change
        merged.append(
            StatementLine(
                at=line.at,
                kind=line.kind,
                amount=line.amount,
                escrow_change=line.escrow_change,
                entry_id=line.entry_id,
                entry_hash=line.entry_hash,
                escrow_after=escrow,
            )
        )
    return merged


# --- the PDF ---------------------------------------------------------------------------------

HASH = ParagraphStyle("hash", parent=BODY, fontSize=6.5, leading=8, wordWrap="CJK")


def _signed(line: StatementLine) -> str:
    if line.escrow_change > 0:
        return f"+{yuan(line.amount)}"
    if line.escrow_change < 0:
        return f"-{yuan(line.amount)}"
    return yuan(line.amount)


def _lines_table(lines: list[StatementLine]) -> Flowable:
    widths = [10 * mm, 30 * mm, 42 * mm, 24 * mm, 24 * mm, WIDTH - 130 * mm]
    rows = [
        [
            str(number),
            beijing_datetime(line.at, language="zh-hans"),
            p(escape(line.label), BODY),
            _signed(line),
            yuan(line.escrow_after or 0),
            p(f"{line.entry_hash[:32]}<br/>{line.entry_hash[32:]}", HASH) if line.entry_hash else "—",
        ]
        for number, line in enumerate(lines, start=1)
    ]
    return ruled_table(
        ["序号", "时间（北京时间）", "摘要", "金额", "托管余额", "分录哈希（SHA-256）"], rows, widths, right=3
    )


def holder_statement_pdf(*, card: Card) -> bytes:
    """The holder's statement of ``card``: an A4 PDF in Chinese."""
    buffer = io.BytesIO()
    doc = document(buffer, title=f"{TITLE} {card.pk}", subject=f"{card.merchant.name} {card.product.name}")
    lines = holder_statement_lines(card=card)
    with override("zh-hans"):  # the labels, in the statement's language
        table = _lines_table(lines) if lines else p("本卡尚无资金往来。")
    story: list[Flowable] = [
        p(TITLE, TITLE_STYLE),
        p(f"卡号：{card.pk}", SUBTITLE),
        Spacer(0, 4 * mm),
        pairs_table(
            [
                ("商户", card.merchant.name),
                ("卡名", card.product.name),
                ("持卡人", card.consumer.display_name),
                ("购卡金额", yuan(card.price)),
                ("托管余额", yuan(card.escrow_left if card.paid_at else 0)),
                ("已划付商户", yuan(card.released_total)),
                ("已退还持卡人", yuan(card.refunded_total)),
                ("付款时间", beijing_time(card.paid_at) if card.paid_at else "未付款"),
            ]
        ),
        p(f"资金往来明细（{len(lines)} 笔）", HEADING_STYLE),
        table,
        Spacer(0, 2 * mm),
        p(
            "每笔往来均为平台资金托管账本中的一笔分录，其哈希值由该分录内容及其前一分录的哈希计算而得，"
            "市场监管部门的账本核验逐一重算。托管余额为该笔之后本卡仍存于托管账户的金额。"
            f"本对账单生成于{beijing_time(clock.now())}。",
            NOTE,
        ),
    ]
    doc.build(story, canvasmaker=page_canvas(f"{TITLE} · {card.merchant.name}"))
    return buffer.getvalue()
