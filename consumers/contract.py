"""A card's purchase contract and receipt as a PDF (API.md, Cards: ``contract.pdf``).

The document is in Chinese, on the PDF foundation (``core.pdf``: the embedded CJK font, the A4
template, the page footer with the platform's contact and "第 n 页 / 共 N 页").
Money is integer fen and is formatted without floats. Times are shown in Beijing time.
The refund rules follow API.md, Refunds; the cooling-off period and the time to pay a refund come
from the rules profile in force, and the contract cites their provisions and the profile's version.

A card's life after its purchase shows in it too: the top-ups paid into it (each with its own annex,
``top_up_annex_pdf``) and its transfers. A card that changed hands is reissued in its holder's name,
with the transfer's date; the giver's contract stays theirs as it stood until the transfer
(``card_contract_pdf(card=..., until=transfer)``), naming them and saying when and to whom it passed.
"""

from __future__ import annotations

import io
from datetime import timedelta
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, Spacer, Table, TableStyle

from consumers.models import Card, CardTransfer, Consumer, TopUp
from core import clock
from core.formatting import beijing_time, mask_phone, percent, yuan
from core.pdf import FONT, document, page_canvas
from core.rules import Rule, rule, rules_active
from merchants.models import Product
from merchants.registry import district_name
from merchants.selectors import merchant_filing_status

TITLE = "单用途预付卡购卡合同及收据"
KIND_NAMES = {
    Product.Kind.STORED_VALUE: "储值卡",
    Product.Kind.SESSION_PACK: "次卡",
    Product.Kind.PERIOD_PASS: "期限卡",
}
# The merchant's filing (备案), shown only when the rules require one or it was accepted.
FILING_NAMES = {"filed": "已备案", "not_filed": "未备案"}

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=10, leading=15, wordWrap="CJK")
_TITLE = ParagraphStyle("title", parent=_BODY, fontSize=18, leading=24, alignment=TA_CENTER, spaceAfter=2 * mm)
_HEADING = ParagraphStyle("heading", parent=_BODY, fontSize=12, leading=17, spaceBefore=4 * mm, spaceAfter=1.5 * mm)
_SMALL = ParagraphStyle("small", parent=_BODY, fontSize=8, leading=11, textColor=colors.grey)
_CENTERED_SMALL = ParagraphStyle("centered_small", parent=_SMALL, alignment=TA_CENTER)
_GRID = [
    ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
    ("BACKGROUND", (2, 0), (2, -1), colors.whitesmoke),
    ("TOPPADDING", (0, 0), (-1, -1), 2),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
]


def qr_drawing(value: str, size: float = 32 * mm) -> Drawing:
    """A square drawing holding a QR code of ``value``."""
    widget = QrCodeWidget(value, barWidth=size, barHeight=size)
    drawing = Drawing(size, size)
    drawing.add(widget)
    return drawing


def _p(text: str, style: ParagraphStyle = _BODY) -> Paragraph:
    return Paragraph(text, style)


def _table(pairs: list[tuple[str, str]], label_width: float = 34 * mm) -> Table:
    """Label/value pairs laid out two to a row; a last pair left alone spans the row.

    The text is escaped: names and addresses are user input, not paragraph markup.
    """
    rows, spans = [], []
    for start in range(0, len(pairs), 2):
        cells = [_p(escape(text)) for pair in pairs[start : start + 2] for text in pair]
        if len(cells) == 2:
            cells += ["", ""]
            spans += [
                ("SPAN", (1, len(rows)), (3, len(rows))),
                ("BACKGROUND", (1, len(rows)), (3, len(rows)), colors.white),
            ]
        rows.append(cells)
    table = Table(rows, colWidths=[label_width, None, label_width, None])
    table.setStyle(TableStyle(_GRID + spans))
    return table


def _header(card: Card) -> Table:
    """The title and card id, with a QR code of the card id on the right."""
    qr_size = 28 * mm
    header = Table(
        [[[_p(TITLE, _TITLE), _p(f"卡号：{card.pk}", _CENTERED_SMALL)], qr_drawing(str(card.pk), qr_size)]],
        colWidths=[None, qr_size],
    )
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (1, 0), (1, 0), 0)]))
    return header


def _parties(card: Card, holder: Consumer) -> Table:
    merchant, consumer = card.merchant, holder
    rows = [
        ("商户（卖方）", merchant.name),
        ("消费者（买方）", consumer.display_name),
        ("统一社会信用代码", merchant.license_number),
        ("手机号码", mask_phone(consumer.phone)),
        ("所在区", district_name(merchant.district, "zh-hans")),
        ("经营地址", merchant.address),
    ]
    filing = FILING_NAMES.get(merchant_filing_status(merchant=merchant))
    return _table([*rows, ("备案状态", filing)] if filing else rows)


def _terms(card: Card) -> Table:
    rows = [("商品名称", card.product.name), ("卡片类型", KIND_NAMES.get(card.kind, card.kind))]
    if card.kind == Product.Kind.STORED_VALUE:
        rows += [("储值面额", yuan(card.face_value)), ("单次最低服务价格", yuan(card.unit_price))]
    elif card.kind == Product.Kind.SESSION_PACK:
        rows.append(("服务次数", f"{card.sessions} 次"))
    elif card.kind == Product.Kind.PERIOD_PASS:
        rows.append(("有效天数", f"{card.days} 天"))
        if card.valid_from and card.valid_until:
            rows.append(("有效期", f"{beijing_time(card.valid_from)} 至 {beijing_time(card.valid_until)}"))
    rows += [("购卡价款", yuan(purchase_price(card))), ("自愿退款手续费率", percent(card.refund_fee_bps))]
    return _table(rows)


PAID_TOP_UPS = (TopUp.State.COOLING_OFF, TopUp.State.SETTLED, TopUp.State.REFUNDED)
TOP_UP_STATES = {
    TopUp.State.PENDING_PAYMENT: "待付款",
    TopUp.State.COOLING_OFF: "冷静期内",
    TopUp.State.SETTLED: "已生效",
    TopUp.State.REFUNDED: "已退款",
    TopUp.State.CANCELLED: "已取消",
}


def _paid_top_ups(card: Card) -> list[TopUp]:
    return list(card.top_ups.filter(state__in=PAID_TOP_UPS).order_by("paid_at", "pk"))


def purchase_price(card: Card) -> int:
    """What the purchase itself cost: the card's money paid less its paid top-ups."""
    return card.price - sum(top_up.amount for top_up in _paid_top_ups(card))


# Civil Code art. 203, as core.calendar counts it (last_day).
HOLIDAY_EXTENSION = "期间的最后一日是法定节假日的，顺延至其后的第一个工作日。"


def _cooling_off_note(card: Card) -> str:
    cooling_off = rule("cooling_off_days")
    if card.paid_at is None or card.cooling_off_ends_at is None:
        return (
            f"本卡尚未付款。冷静期自付款成功时开始计算：付款当日不计，至付款次日起第{cooling_off.value}日"
            f"24:00（北京时间）届满，截止时间将在付款后确定。{HOLIDAY_EXTENSION}"
        )
    purchase_day = clock.local_date(card.paid_at)
    last_day = clock.local_date(card.cooling_off_ends_at) - timedelta(days=1)
    days = (last_day - purchase_day).days
    extended = (
        f"第{cooling_off.value}日为法定节假日，顺延至其后的第一个工作日。"
        if days > cooling_off.value
        else HOLIDAY_EXTENSION
    )
    return (
        f"冷静期截止时间 {beijing_time(card.cooling_off_ends_at)}，"
        f"即购卡当日（{purchase_day.month}月{purchase_day.day}日）不计，"
        f"购卡次日起第{days}日（{last_day.month}月{last_day.day}日）24:00 届满。{extended}"
        "冷静期内确认接受首次服务的，冷静期即时结束。"
    )


def _receipt(card: Card, *, given: bool = False) -> list[Flowable]:
    if card.paid_at is None:
        pairs = [
            ("应付金额", f"{yuan(card.price)}（待付款）"),
            ("付款时间", "尚未付款"),
            ("冷静期截止", "付款后确定"),
        ]
    else:
        pairs = [
            ("实付金额", yuan(purchase_price(card))),
            ("付款时间", beijing_time(card.paid_at)),
            ("冷静期截止", beijing_time(card.cooling_off_ends_at) if card.cooling_off_ends_at else "—"),
        ]
        if card.price != purchase_price(card):
            pairs.append(("含充值累计实付", yuan(card.price)))
        if not given:
            pairs.append(("当前托管余额", yuan(card.escrow_account.balance)))
    return [_table(pairs, label_width=28 * mm), Spacer(0, 1.5 * mm), _p(_cooling_off_note(card))]


def _refund_rules(card: Card) -> list[Flowable]:
    deadline = beijing_time(card.cooling_off_ends_at) if card.cooling_off_ends_at else "付款后确定"
    small_balance = (
        f"储值卡余额大于零且低于单次最低服务价格（{yuan(card.unit_price)}）时，可申请退还托管账户中的全部剩余款项，不收取手续费。"
        if card.kind == Product.Kind.STORED_VALUE
        else "仅适用于储值卡，本卡不适用。"
    )
    fee = (
        f"扣除手续费，手续费为退款时托管余额的{percent(card.refund_fee_bps)}（按分向下取整），归商户所有。"
        if card.refund_fee_bps
        else "不收取手续费。"
    )
    rules = [
        (
            "冷静期退款",
            f"在冷静期截止（{deadline}）前且未接受任何服务的，"
            f"可申请全额退还购卡价款 {yuan(card.price)}，不收取手续费。",
        ),
        ("小额余额退款", small_balance),
        ("自愿退款", f"冷静期结束后，可随时申请退还托管账户中的剩余款项，{fee}"),
        (
            "商户停业退款",
            "商户停业或经监管部门责令退款的，平台将托管账户中的全部剩余款项退还消费者，不收取手续费，无需申请。",
        ),
        (
            "退款期限",
            f"各项退款自申请（或平台决定退款）之时起{rule('refund_due_days').value}日内退回消费者的原付款账户。",
        ),
    ]
    return [_p(f"{number}. {name}：{text}") for number, (name, text) in enumerate(rules, start=1)]


def _basis_line(name: str, found: Rule) -> str:
    """One rule's provision; a deployment that overrides its value says so."""
    unit = {"days": "日", "hours": "小时"}.get(found.unit, found.unit)
    override = f"（本平台现按{found.value}{unit}执行）" if found.overridden_by else ""
    return f"{name}：{escape(found.basis_zh)}{override}"


def _basis() -> Paragraph:
    """The provisions the cooling-off and refund terms come from, and the rules profile's version."""
    profile = rules_active()
    lines = [
        _basis_line("冷静期", rule("cooling_off_days")),
        _basis_line("退款期限", rule("refund_due_days")),
    ]
    return _p(
        f"上述冷静期及退款期限依据{escape(profile.name_zh)}规则（版本 {escape(profile.version)}）："
        + "；".join(lines)
        + "。"
    )


def _escrow_statement(card: Card) -> Paragraph:
    if card.kind == Product.Kind.PERIOD_PASS:
        release = (
            "期限卡自首次入场确认或冷静期结束（以先到者为准）起生效，款项按已经过的天数逐日划付给商户，"
            "期满之日划付剩余款项；未到期部分始终留在托管账户中。"
        )
    else:
        release = "款项仅在消费者确认接受相应服务后，方按该次服务的金额划付给商户；未经消费者确认的款项不会划付给商户。"
    return _p(
        "本卡购卡价款全额存入平台在托管银行开立的托管账户，与平台及商户的自有资金分开管理。"
        + release
        + "退款从托管账户中支付。"
    )


def _accepted_transfers(card: Card, *, until: CardTransfer | None) -> list[CardTransfer]:
    transfers = card.transfers.filter(state=CardTransfer.State.ACCEPTED).select_related("from_consumer", "to_consumer")
    if until is not None and until.decided_at is not None:
        transfers = transfers.filter(decided_at__lte=until.decided_at)
    return list(transfers.order_by("decided_at", "pk"))


def _holding(card: Card, transfers: list[CardTransfer], *, until: CardTransfer | None) -> list[Flowable]:
    """Whose the card is under this contract: reissued to a holder who received it by transfer, or
    the giver's copy, ended by the transfer."""
    if until is not None and until.decided_at is not None and until.to_consumer is not None:
        return [
            _p(
                f"本卡已于 {beijing_time(until.decided_at)} 转让给 {escape(until.to_consumer.display_name)}"
                f"（手机号码 {mask_phone(until.to_consumer.phone)}）。自转让时起，本合同项下的权利义务由受让人承继，"
                "原持卡人不再享有本卡权利；转让未收取任何费用，托管资金未发生变动。"
            )
        ]
    received = [transfer for transfer in transfers if transfer.to_consumer_id == card.consumer_id]
    if not received:
        return []
    last = received[-1]
    when = beijing_time(last.decided_at) if last.decided_at else "—"
    return [
        _p(
            f"本合同因预付卡转让重新签发：{escape(last.from_consumer.display_name)} 于 {when} 将本卡转让给"
            f"现持卡人 {escape(card.consumer.display_name)}，并已通知商户。"
            "本卡的服务条款、托管余额及退款规则均不因转让而改变。"
        )
    ]


def _top_ups_table(top_ups: list[TopUp]) -> Table:
    rows = [["付款时间", "充值金额", "增加面额", "冷静期截止", "状态"]]
    rows += [
        [
            beijing_time(top_up.paid_at) if top_up.paid_at else "—",
            yuan(top_up.amount),
            yuan(top_up.face_value),
            beijing_time(top_up.cooling_off_ends_at) if top_up.cooling_off_ends_at else "—",
            TOP_UP_STATES[top_up.state],
        ]
        for top_up in top_ups
    ]
    table = Table([[_p(escape(cell)) for cell in row] for row in rows])
    table.setStyle(TableStyle([*_GRID[:2], ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]))
    return table


def _transfers_table(transfers: list[CardTransfer]) -> Table:
    rows = [["转让时间", "原持卡人", "受让人"]]
    rows += [
        [
            beijing_time(transfer.decided_at) if transfer.decided_at else "—",
            transfer.from_consumer.display_name,
            transfer.to_consumer.display_name if transfer.to_consumer else "—",
        ]
        for transfer in transfers
    ]
    table = Table([[_p(escape(cell)) for cell in row] for row in rows])
    table.setStyle(TableStyle([*_GRID[:2], ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]))
    return table


def card_contract_pdf(*, card: Card, until: CardTransfer | None = None) -> bytes:
    """The purchase contract and receipt of ``card``: an A4 PDF, naming its present holder (reissued
    to one who received it by transfer). With ``until`` (an accepted transfer of it), the giver's
    copy instead: as it stood until that transfer, naming the giver and saying it ended then."""
    holder = until.from_consumer if until is not None else card.consumer
    transfers = _accepted_transfers(card, until=until)
    top_ups = _paid_top_ups(card)
    if until is not None and until.decided_at is not None:
        top_ups = [top_up for top_up in top_ups if top_up.paid_at and top_up.paid_at <= until.decided_at]
    buffer = io.BytesIO()
    doc = document(buffer, title=TITLE, subject=f"卡号 {card.pk}", bottom_margin=16 * mm)
    story: list[Flowable] = [
        _header(card),
        _p("一、合同双方", _HEADING),
        _parties(card, holder),
        *_holding(card, transfers, until=until),
        _p("二、商品及服务条款", _HEADING),
        _terms(card),
        _p("三、付款收据及冷静期", _HEADING),
        *_receipt(card, given=until is not None),
        _p("四、退款规则", _HEADING),
        *_refund_rules(card),
        _basis(),
        _p("五、资金托管", _HEADING),
        _escrow_statement(card),
    ]
    if top_ups:
        story += [
            _p("六、充值记录", _HEADING),
            _p("每笔充值另有补充协议及收据，各自享有冷静期，冷静期内未接受服务的可全额退还该笔充值款。"),
            _top_ups_table(top_ups),
        ]
    if transfers:
        story += [_p("七、转让记录" if top_ups else "六、转让记录", _HEADING), _transfers_table(transfers)]
    story += [Spacer(0, 4 * mm), _p(f"本文件生成时间：{beijing_time(clock.now())}", _SMALL)]
    doc.build(story, canvasmaker=page_canvas(f"{TITLE}　卡号 {card.pk}"))
    return buffer.getvalue()


ANNEX_TITLE = "预付卡充值补充协议及收据"


def top_up_annex_pdf(*, top_up: TopUp) -> bytes:
    """A top-up's contract annex and receipt: a purchase of its own, with its own cooling-off period
    and escrow, under the card's contract."""
    card = top_up.card
    buffer = io.BytesIO()
    doc = document(buffer, title=ANNEX_TITLE, subject=f"卡号 {card.pk} 充值 {top_up.pk}", bottom_margin=16 * mm)
    cooling_off = rule("cooling_off_days")
    if top_up.paid_at is None:
        receipt = [
            ("应付金额", f"{yuan(top_up.amount)}（{TOP_UP_STATES[top_up.state]}）"),
            ("增加面额", yuan(top_up.face_value)),
        ]
        window = (
            f"冷静期自付款成功时开始计算：付款当日不计，至付款次日起第{cooling_off.value}日24:00（北京时间）届满。"
            f"{HOLIDAY_EXTENSION}"
        )
    else:
        ends = beijing_time(top_up.cooling_off_ends_at) if top_up.cooling_off_ends_at else "—"
        receipt = [
            ("实付金额", yuan(top_up.amount)),
            ("增加面额", yuan(top_up.face_value)),
            ("付款时间", beijing_time(top_up.paid_at)),
            ("冷静期截止", ends),
            ("状态", TOP_UP_STATES[top_up.state]),
        ]
        window = f"本笔充值的冷静期截止时间为 {ends}。{HOLIDAY_EXTENSION}"
    story: list[Flowable] = [
        _p(ANNEX_TITLE, _TITLE),
        _p(f"卡号：{card.pk}　充值编号：{top_up.pk}", _CENTERED_SMALL),
        _p("一、当事人", _HEADING),
        _parties(card, top_up.consumer),
        _p("二、充值内容", _HEADING),
        _table([("商品名称", card.product.name), ("卡片类型", KIND_NAMES.get(card.kind, card.kind)), *receipt]),
        _p(
            "本笔充值按原购卡合同约定的价款与面额比例折算面额（按分向下取整），计入本卡余额；"
            "原购卡合同的服务条款、退款规则及手续费率同样适用于本笔充值。"
        ),
        _p("三、冷静期", _HEADING),
        _p(
            f"{window}冷静期内且本笔充值付款后未接受任何服务的，可申请全额退还本笔充值款 {yuan(top_up.amount)}，"
            "不收取手续费，原路退回本笔充值的付款账户；退还后本卡余额相应减少本笔充值增加的面额，"
            f"其余款项及本卡状态不受影响。退款自申请之时起{rule('refund_due_days').value}日内退回。"
        ),
        _p("四、资金托管", _HEADING),
        _p(
            "本笔充值款全额存入本卡在托管银行的托管账户，与平台及商户的自有资金分开管理，"
            "仅在消费者确认接受相应服务后按该次服务的金额划付给商户。"
        ),
        _p(
            f"依据：{escape(cooling_off.basis_zh)}；{escape(rule('max_price').basis_zh)}"
            f"（{escape(rules_active().name_zh)}规则，版本 {escape(top_up.rules_version or rules_active().version)}）。"
        ),
        Spacer(0, 4 * mm),
        _p(f"本文件生成时间：{beijing_time(clock.now())}", _SMALL),
    ]
    doc.build(story, canvasmaker=page_canvas(f"{ANNEX_TITLE}　卡号 {card.pk}"))
    return buffer.getvalue()
