"""The purchase contract and receipt PDF (consumers.contract)."""

import io
import re
from datetime import datetime

import pypdf
import pytest
from reportlab.graphics.barcode.qr import QrCodeWidget

import consumers.contract
from consumers.contract import card_contract_pdf, mask_phone, qr_drawing
from consumers.models import Card, Consumer
from core import clock
from core.formatting import percent, yuan
from core.models import User
from escrow.services import account_open
from merchants.models import Merchant, Product
from merchants.registry import uscc_check_character

LICENSE = "91110105MA01ABCD3" + uscc_check_character("91110105MA01ABCD3")
PAID_AT = datetime(2026, 3, 2, 23, 50, tzinfo=clock.BEIJING)
COOLING_OFF_ENDS_AT = datetime(2026, 3, 10, 0, 0, tzinfo=clock.BEIJING)


def make_card(*, paid: bool = True, **terms) -> Card:
    """A card of a fitness studio, paid at PAID_AT unless ``paid`` is false; ``terms`` override the product's."""
    now = clock.now()
    merchant = Merchant.objects.create(
        user=User.objects.create_user(username="gym", password="pw-123456789", role="merchant"),
        name="朝阳健身工作室",
        license_number=LICENSE,
        category=Merchant.Category.FITNESS,
        district="110105",
        address="北京市朝阳区建国路88号",
        settlement_account=account_open(kind="merchant_settlement", name="gym settlement"),
        created_at=now,
    )
    terms = {
        "kind": Product.Kind.STORED_VALUE,
        "price": 123456,
        "face_value": 150000,
        "unit_price": 8800,
        "refund_fee_bps": 150,
        **terms,
    }
    product = Product.objects.create(merchant=merchant, name="健身储值卡", created_at=now, **terms)
    consumer = Consumer.objects.create(
        user=User.objects.create_user(username="li", password="pw-123456789"),
        display_name="李小明",
        phone="13812341234",
        created_at=now,
    )
    payment = {"state": "cooling_off", "paid_at": PAID_AT, "cooling_off_ends_at": COOLING_OFF_ENDS_AT} if paid else {}
    return Card.objects.create(
        product=product,
        merchant=merchant,
        consumer=consumer,
        escrow_account=account_open(kind="card_escrow", name="card escrow"),
        balance=terms["face_value"],
        sessions_remaining=terms.get("sessions"),
        created_at=now,
        **terms,
        **payment,
    )


def text_of(pdf: bytes) -> str:
    """The PDF's text with line breaks removed (a phrase may wrap anywhere)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return re.sub(r"\s*\n\s*", "", "".join(page.extract_text() for page in reader.pages))


@pytest.fixture
def card(db):
    return make_card()


@pytest.mark.django_db
def test_renders_a_pdf_that_parses(card):
    pdf = card_contract_pdf(card=card)

    assert pdf.startswith(b"%PDF")
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) >= 1


@pytest.mark.django_db
def test_names_both_parties(card):
    text = text_of(card_contract_pdf(card=card))

    assert "单用途预付卡购卡合同及收据" in text
    assert "朝阳健身工作室" in text
    assert LICENSE in text
    assert "朝阳区" in text
    assert "北京市朝阳区建国路88号" in text
    assert "李小明" in text
    assert "138****1234" in text
    assert "13812341234" not in text


@pytest.mark.django_db
def test_states_the_card_id_price_and_stored_value_terms(card):
    text = text_of(card_contract_pdf(card=card))

    assert str(card.pk) in text
    assert "¥1,234.56" in text
    assert "¥1,500.00" in text  # face value
    assert "¥88.00" in text  # unit price


@pytest.mark.django_db
def test_states_the_cooling_off_deadline_in_beijing_time(card):
    text = text_of(card_contract_pdf(card=card))

    assert "2026年3月2日 23:50（北京时间）" in text  # paid at
    assert "2026年3月10日 00:00（北京时间）" in text
    assert "第7日（3月9日）24:00" in text


@pytest.mark.django_db
def test_states_every_refund_reason_and_the_fee(card):
    text = text_of(card_contract_pdf(card=card))

    for reason in ("冷静期退款", "小额余额退款", "自愿退款", "商户停业退款"):
        assert reason in text
    assert "1.5%" in text


@pytest.mark.django_db
def test_states_that_the_money_is_held_in_escrow(card):
    text = text_of(card_contract_pdf(card=card))

    assert "托管账户" in text
    assert "消费者确认接受相应服务后" in text


@pytest.mark.django_db
def test_session_pack_states_its_sessions(db):
    card = make_card(kind=Product.Kind.SESSION_PACK, face_value=None, unit_price=None, sessions=12)

    text = text_of(card_contract_pdf(card=card))

    assert "12 次" in text
    assert "本卡不适用" in text  # small_balance is for stored value only


@pytest.mark.django_db
def test_period_pass_states_its_days(db):
    card = make_card(kind=Product.Kind.PERIOD_PASS, face_value=None, unit_price=None, days=90)

    assert "90 天" in text_of(card_contract_pdf(card=card))


@pytest.mark.django_db
def test_unpaid_card_says_the_cooling_off_period_starts_on_payment(db):
    card = make_card(paid=False)
    assert card.state == Card.State.PENDING_PAYMENT

    text = text_of(card_contract_pdf(card=card))

    assert "尚未付款" in text
    assert "冷静期自付款成功时开始计算" in text


def test_qr_drawing_encodes_the_value():
    drawing = qr_drawing("0b6f3c7e-card-id")

    widgets = [shape for shape in drawing.contents if isinstance(shape, QrCodeWidget)]
    assert [widget.value for widget in widgets] == ["0b6f3c7e-card-id"]


@pytest.mark.django_db
def test_the_contract_holds_a_qr_code_of_the_card_id(card, monkeypatch):
    encoded = []

    def spy(value, *args):
        encoded.append(value)
        return qr_drawing(value, *args)

    monkeypatch.setattr(consumers.contract, "qr_drawing", spy)

    card_contract_pdf(card=card)

    assert encoded == [str(card.pk)]


@pytest.mark.parametrize(
    ("fen", "shown"), [(0, "¥0.00"), (5, "¥0.05"), (123456, "¥1,234.56"), (100000000, "¥1,000,000.00")]
)
def test_yuan_formats_fen_without_floats(fen, shown):
    assert yuan(fen) == shown


@pytest.mark.parametrize(("bps", "shown"), [(0, "0%"), (150, "1.5%"), (200, "2%"), (125, "1.25%"), (5, "0.05%")])
def test_percent_from_basis_points(bps, shown):
    assert percent(bps) == shown


@pytest.mark.django_db
def test_user_text_is_not_read_as_markup(db):
    card = make_card()
    Merchant.objects.filter(pk=card.merchant_id).update(name="A&B <健身>")
    card.merchant.refresh_from_db()

    assert "A&B <健身>" in text_of(card_contract_pdf(card=card))


def test_phone_is_masked():
    assert mask_phone("13812341234") == "138****1234"
