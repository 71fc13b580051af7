"""Regulators and their jurisdictions (``regulator.selectors.jurisdiction`` says what one covers).

A district is given as its GB/T 2260 code or its name (``merchants.registry.district_code``: 110105,
朝阳区, 朝阳, Chaoyang) and stored as the code; a category is one of ``Merchant.Category``. An unknown
one is refused by name, so a typing error never makes a regulator's jurisdiction silently smaller.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from core import clock
from core.errors import InvalidInput
from core.models import User
from core.services import user_create
from merchants.models import Merchant
from merchants.registry import district_code
from regulator.models import RegulatorScope


def jurisdiction_clean(*, districts: Iterable[str] = (), categories: Iterable[str] = ()) -> tuple[list, list]:
    """``(district codes, categories)``, each once, in the order given; an unknown district or
    category is ``InvalidInput`` naming it."""
    codes: list[str] = []
    for value in districts:
        code = district_code(value)
        if code is None:
            raise InvalidInput(
                f"unknown district {value!r}: a Beijing district's GB/T 2260 code or name, e.g. 110105 or 朝阳区",
                errors={"districts": [f"unknown district {value!r}"]},
            )
        if code not in codes:
            codes.append(code)
    kinds: list[str] = []
    for value in categories:
        if value not in Merchant.Category.values:
            raise InvalidInput(
                f"unknown category {value!r}: one of {', '.join(Merchant.Category.values)}",
                errors={"categories": [f"unknown category {value!r}"]},
            )
        if value not in kinds:
            kinds.append(value)
    return codes, kinds


def regulator_scope_set(*, user: User, districts: Iterable[str] = (), categories: Iterable[str] = ()) -> RegulatorScope:
    """Give regulator ``user`` these districts and categories (none of either: all of them)."""
    if user.role != User.Role.REGULATOR:
        raise InvalidInput(errors={"user": ["not a regulator"]})
    codes, kinds = jurisdiction_clean(districts=districts, categories=categories)
    with transaction.atomic():
        scope, _created = RegulatorScope.objects.update_or_create(
            user=user, defaults={"districts": codes, "categories": kinds, "updated_at": clock.now()}
        )
    user.regulator_scope = scope  # the user object answers the new jurisdiction at once
    return scope


def regulator_create(
    *, username: str, password: str, districts: Iterable[str] = (), categories: Iterable[str] = ()
) -> User:
    """A regulator user with its jurisdiction, both or neither (``createregulator``)."""
    codes, kinds = jurisdiction_clean(districts=districts, categories=categories)
    with transaction.atomic():
        user = user_create(username=username, password=password, role=User.Role.REGULATOR)
        if codes or kinds:
            regulator_scope_set(user=user, districts=codes, categories=kinds)
    return user
