"""Build merchants, products, consumers and cards through the real services."""

import itertools
from datetime import datetime

import time_machine

from consumers.models import Card, Consumer
from consumers.services import card_purchase, consumer_register, payment_simulate
from merchants.models import Merchant, Product
from merchants.registry import uscc_check_character
from merchants.services.merchants import merchant_register, product_create

PASSWORD = "s3cure-pass-word"
_n = itertools.count(1)


def license_number(n: int) -> str:
    first17 = f"9111010{n:010d}"
    return first17 + uscc_check_character(first17)


def merchant(*, category: str = "fitness", district: str = "朝阳区", name: str | None = None) -> Merchant:
    n = next(_n)
    return merchant_register(
        username=f"merchant{n}",
        password=PASSWORD,
        name=name or f"Merchant {n}",
        license_number=license_number(n),
        category=category,
        district=district,
        address="1 Test Road",
    )


def consumer(*, phone: str = "13800001234") -> Consumer:
    n = next(_n)
    return consumer_register(username=f"consumer{n}", password=PASSWORD, display_name=f"Consumer {n}", phone=phone)


def session_pack(m: Merchant, *, price: int = 100_000, sessions: int = 10, refund_fee_bps: int = 0) -> Product:
    return product_create(
        merchant=m, name="pack", kind="session_pack", price=price, sessions=sessions, refund_fee_bps=refund_fee_bps
    )


def stored_value(
    m: Merchant, *, price: int = 90_000, face_value: int = 100_000, unit_price: int = 5_000, refund_fee_bps: int = 0
):
    return product_create(
        merchant=m,
        name="stored",
        kind="stored_value",
        price=price,
        face_value=face_value,
        unit_price=unit_price,
        refund_fee_bps=refund_fee_bps,
    )


def period_pass(m: Merchant, *, price: int = 30_000, days: int = 30) -> Product:
    return product_create(merchant=m, name="pass", kind="period_pass", price=price, days=days)


def paid_card(product: Product, buyer: Consumer | None = None, *, at: str | datetime | None = None) -> Card:
    """A card bought and paid through the local gateway (at ``at``, Beijing time, if given)."""
    buyer = buyer or consumer()

    def buy() -> Card:
        card = card_purchase(consumer=buyer, product_id=product.pk)
        return payment_simulate(consumer=buyer, payment_id=card.payment.pk, outcome="succeeded")

    if at is None:
        card = buy()
    else:
        with time_machine.travel(at, tick=False):
            card = buy()
    return Card.objects.select_related("escrow_account", "merchant").get(pk=card.pk)


def fresh(card: Card) -> Card:
    return Card.objects.select_related("escrow_account", "merchant").get(pk=card.pk)


def invariant_holds(card: Card) -> bool:
    card = fresh(card)
    return card.price == card.escrow_account.balance + card.released_total + card.refunded_total
