"""A regulator's jurisdiction: the merchants it sees and acts on.

A regulator oversees the whole city, or only the merchants of some districts, of some categories,
or both (the merchants in one of its districts *and* of one of its categories). It is stored per
regulator (``RegulatorScope``: made by ``createregulator --district ... --category ...`` or the
admin); a regulator without one oversees the whole city.

Every regulator read and action starts from ``jurisdiction_of(user).merchants()`` (or ``.narrow``,
``.covers``), so that a merchant outside answers 404 as a missing one does, and so does anything of
it: its cards, refunds, complaints, filings, actions, audit lines and journal entries. Counts,
charts and exports are of the jurisdiction only. The apps below the regulator's (consumers,
refunds, complaints) reach the same object through ``merchants.oversight``, where ``RegulatorConfig``
registers ``jurisdiction_of``.

What stays city-wide for every regulator: the ledger's verification and the reconciliations with
the bank. The ledger is one book whose custody is checked as one total over every merchant's
custody account, with hash chains that run across all merchants; whether it balances and its
chains hold is one fact about the whole book, and none of it names a merchant. A district
regulator sees that verdict (and may ask for it again), but not the entries of merchants outside
(the audit log and the journal export are scoped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet

from core.errors import NotFound
from core.models import User
from merchants.models import Merchant
from regulator.models import RegulatorScope

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Jurisdiction:
    """``None`` for districts or categories means all of them; an empty tuple means none."""

    districts: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None

    @property
    def city_wide(self) -> bool:
        return self.districts is None and self.categories is None

    def q(self, path: str = "") -> Q:
        """The condition on a merchant reached by ``path`` (``"merchant__"``, ``"card__merchant__"``)."""
        condition = Q()
        if self.districts is not None:
            condition &= Q(**{f"{path}district__in": self.districts})
        if self.categories is not None:
            condition &= Q(**{f"{path}category__in": self.categories})
        return condition

    def narrow(self, queryset: QuerySet[M], *, path: str = "") -> QuerySet[M]:
        """``queryset`` without the rows whose merchant (reached by ``path``) is outside."""
        return queryset if self.city_wide else queryset.filter(self.q(path))

    def merchants(self, queryset: QuerySet[Merchant] | None = None) -> QuerySet[Merchant]:
        return self.narrow(Merchant.objects.all() if queryset is None else queryset)

    def covers(self, merchant: Merchant) -> bool:
        return (self.districts is None or merchant.district in self.districts) and (
            self.categories is None or merchant.category in self.categories
        )

    def require(self, queryset: QuerySet, *, pk: Any, path: str = "merchant__") -> None:
        """``NotFound`` unless row ``pk`` of ``queryset`` is of a merchant within (reached by
        ``path``). City-wide it asks nothing: the service that looks the row up answers for a
        missing one."""
        if self.city_wide:
            return
        try:
            within = self.narrow(queryset.filter(pk=pk), path=path).exists()
        except (ValueError, TypeError, ValidationError) as exc:
            raise NotFound() from exc
        if not within:
            raise NotFound()

    def as_dict(self) -> dict[str, str | list[str]]:
        """``{districts, categories}``: ``"all"`` or the list (API.md, ``GET /regulator/me``)."""
        return {
            "districts": "all" if self.districts is None else list(self.districts),
            "categories": "all" if self.categories is None else list(self.categories),
        }


CITY = Jurisdiction()
NOWHERE = Jurisdiction(districts=(), categories=())  # what a user who is no regulator oversees


def jurisdiction_of(user: Any) -> Jurisdiction:
    """The jurisdiction of a regulator user: its ``RegulatorScope``, or the whole city without one.
    Anyone who is not a regulator oversees nothing. The scope is read once per user object (Django
    caches the one-to-one on it, a missing row too)."""
    if getattr(user, "role", None) != "regulator" or not getattr(user, "is_authenticated", False):
        return NOWHERE
    try:
        scope = user.regulator_scope
    except RegulatorScope.DoesNotExist:
        return CITY
    return Jurisdiction(
        districts=tuple(scope.districts) if scope.districts else None,
        categories=tuple(scope.categories) if scope.categories else None,
    )


def jurisdiction_of_actor(actor_id: int | None) -> Jurisdiction:
    """The jurisdiction behind an ``actor_id`` that services receive: a job's (``None``) is the
    whole city's; a user's is ``jurisdiction_of`` that user (one query)."""
    if actor_id is None:
        return CITY
    user = User.objects.select_related("regulator_scope").filter(pk=actor_id).first()
    return NOWHERE if user is None else jurisdiction_of(user)
