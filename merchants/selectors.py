"""Reads for merchants and products."""

from __future__ import annotations

from django.db.models import QuerySet

from core.errors import NotFound
from merchants.models import Merchant, Product


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
