"""Writes for merchants: sign-up and the products they sell."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from core import clock
from core.errors import InvalidInput
from core.idempotency import keyed_id
from core.models import User
from core.rules import profile_version
from core.services import user_create
from escrow.models import Account
from escrow.services import account_open
from merchants.errors import InvalidLicenseNumber
from merchants.models import Merchant, OperatorChange, Product
from merchants.registry import district_code, uscc_is_valid
from merchants.services.limits import product_limits_check
from notifications.services import notification_settings_set

_PRODUCT_IDS = uuid.UUID("3f1c9b2e-8d47-4a61-b0e5-6c2a9d8f7e14")  # namespace of product ids derived from form keys


def merchant_register(
    *,
    username: str,
    password: str,
    name: str,
    license_number: str,
    category: str,
    district: str,
    address: str,
    email: str = "",
) -> Merchant:
    """Sign up a merchant with its user and its settlement, custody and refunds-payable accounts
    (``email``: where its notices go)."""
    license_number = license_number.strip().upper()
    if not uscc_is_valid(license_number):
        raise InvalidLicenseNumber(errors={"license_number": [str(InvalidLicenseNumber.default_detail)]})
    code = district_code(district)
    if code is None:
        raise InvalidInput(errors={"district": [_("Not one of Beijing's 16 districts.")]})
    if category not in Merchant.Category.values:
        raise InvalidInput(errors={"category": [_("Unknown category.")]})
    # A licence an open change of operator will give its merchant is taken too.
    if (
        Merchant.objects.filter(license_number=license_number).exists()
        or OperatorChange.objects.filter(new_license_number=license_number, state__in=OperatorChange.OPEN).exists()
    ):
        raise InvalidInput(errors={"license_number": [_("A merchant with this licence number is registered.")]})
    with transaction.atomic(durable=True):
        user = user_create(username=username, password=password, role=User.Role.MERCHANT)
        notification_settings_set(user=user, email=email)
        account = account_open(kind=Account.Kind.MERCHANT_SETTLEMENT, name=f"settlement: {name}")
        custody = account_open(kind=Account.Kind.CUSTODY, name=f"custody: {name}")
        refund_payable = account_open(kind=Account.Kind.REFUND_PAYABLE, name=f"refunds payable: {name}")
        return Merchant.objects.create(
            user=user,
            name=name,
            license_number=license_number,
            category=category,
            district=code,
            address=address,
            settlement_account=account,
            custody_account=custody,
            refund_payable_account=refund_payable,
            created_at=clock.now(),
        )


def product_create(
    *,
    merchant: Merchant,
    name: str,
    kind: str,
    price: int,
    face_value: int | None = None,
    sessions: int | None = None,
    days: int | None = None,
    unit_price: int | None = None,
    refund_fee_bps: int = 0,
    idempotency_key: str | None = None,
) -> Product:
    """Put a card plan on sale, checking the terms its kind needs and the legal limits.

    Under an ``idempotency_key`` (a page's form sent twice) a repeat returns the product the first
    one made: its id derives from the key."""
    errors: dict[str, list[str]] = {}
    required: dict[str, dict[str, int | None]] = {
        Product.Kind.STORED_VALUE: {"face_value": face_value, "unit_price": unit_price},
        Product.Kind.SESSION_PACK: {"sessions": sessions},
        Product.Kind.PERIOD_PASS: {"days": days},
    }
    if kind not in required:
        raise InvalidInput(errors={"kind": [_("Unknown kind.")]})
    for field, value in required[kind].items():
        if value is None:
            errors[field] = [_("Required for this kind of card.")]
    if kind == Product.Kind.STORED_VALUE and face_value is not None and unit_price is not None:
        if face_value < price:
            errors["face_value"] = [_("The face value may not be below the price.")]
        if not 0 < unit_price <= face_value:
            errors["unit_price"] = [_("The unit price must be above 0 and at most the face value.")]
    if price <= 0:
        errors["price"] = [_("Ensure this value is greater than or equal to 1.")]
    if not 0 <= refund_fee_bps <= 2000:
        errors["refund_fee_bps"] = [_("Between 0% and 20%.")]
    if errors:
        raise InvalidInput(errors=errors)
    keep = required[kind]
    product_limits_check(
        category=merchant.category,
        kind=kind,
        price=price,
        sessions=keep.get("sessions"),
        days=keep.get("days"),
        face_value=keep.get("face_value"),
        unit_price=keep.get("unit_price"),
    )
    product_id = keyed_id(_PRODUCT_IDS, idempotency_key)
    try:
        with transaction.atomic(durable=True):
            return Product.objects.create(
                id=product_id,
                merchant=merchant,
                name=name,
                kind=kind,
                price=price,
                face_value=keep.get("face_value"),
                unit_price=keep.get("unit_price"),
                sessions=keep.get("sessions"),
                days=keep.get("days"),
                refund_fee_bps=refund_fee_bps,
                rules_version=profile_version(),
                created_at=clock.now(),
            )
    except IntegrityError:
        # The same form sent again (or twice at once): the first request made it.
        if idempotency_key and (made := Product.objects.filter(pk=product_id, merchant=merchant).first()):
            return made
        raise
