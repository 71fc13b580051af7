"""Reads for merchants and products. The one figure of a merchant's that is the cards' (what its
customers' cards still hold in escrow) is asked of the consumers app through ``merchants.handlers``."""

from __future__ import annotations

from django.db.models import QuerySet, Sum

from core.errors import NotFound
from escrow.models import Account
from merchants.handlers import escrow_outstanding
from merchants.models import Merchant, Product, Settlement


def merchant_of_user(*, user) -> Merchant:
    """The user's merchant profile (already loaded with the user by token authentication)."""
    try:
        return user.merchant
    except Merchant.DoesNotExist as exc:
        raise NotFound() from exc


def products_on_sale(*, merchant_id: str | None = None) -> QuerySet[Product]:
    """Products a consumer can buy now, with their merchant (for its risk warning)."""
    products = (
        Product.objects.select_related("merchant")
        .filter(on_sale=True, merchant__status=Merchant.Status.ACTIVE)
        .order_by("-created_at", "id")
    )
    if merchant_id is not None:
        products = products.filter(merchant_id=merchant_id)
    return products


def merchant_products(*, merchant: Merchant) -> QuerySet[Product]:
    """Every product the merchant has created, on sale or not, newest first (its own shop page)."""
    return Product.objects.filter(merchant=merchant).order_by("-created_at", "id")


def merchant_balance(*, merchant: Merchant) -> dict:
    """``escrow_outstanding`` (its customers' money still in escrow), ``available`` (released, not
    yet paid out) and ``paid_out_total``, each one aggregate over indexed columns."""
    escrow = escrow_outstanding(merchant_id=merchant.pk)
    available = Account.objects.values_list("balance", flat=True).get(pk=merchant.settlement_account_id)
    paid = (
        Settlement.objects.filter(merchant=merchant, payout_state=Settlement.PayoutState.PAID).aggregate(
            total=Sum("payout_amount")
        )["total"]
        or 0
    )
    return {"escrow_outstanding": escrow, "available": available, "paid_out_total": paid, "currency": "cny"}


def merchant_settlements(*, merchant: Merchant) -> QuerySet[Settlement]:
    return Settlement.objects.filter(merchant=merchant).order_by("-date")


def merchant_settlement_get(*, merchant: Merchant, settlement_id: str) -> Settlement:
    try:
        return Settlement.objects.select_related("merchant").get(pk=settlement_id, merchant=merchant)
    except (Settlement.DoesNotExist, ValueError) as exc:
        raise NotFound() from exc
