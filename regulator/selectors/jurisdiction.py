"""A regulator's jurisdiction: the merchants it sees and acts on.

Every regulator read and action starts from ``jurisdiction_of(user).merchants()`` (or ``.covers``), so
that a merchant outside answers 404 as a missing one does. Issue 18 item 1 gives regulators districts and
categories; until it lands, ``jurisdiction_of`` answers the whole city for every regulator.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from merchants.models import Merchant


@dataclass(frozen=True)
class Jurisdiction:
    """``None`` for districts or categories means all of them."""

    districts: tuple[str, ...] | None = None
    categories: tuple[str, ...] | None = None

    @property
    def city_wide(self) -> bool:
        return self.districts is None and self.categories is None

    def merchants(self, queryset: QuerySet[Merchant] | None = None) -> QuerySet[Merchant]:
        queryset = Merchant.objects.all() if queryset is None else queryset
        if self.districts is not None:
            queryset = queryset.filter(district__in=self.districts)
        if self.categories is not None:
            queryset = queryset.filter(category__in=self.categories)
        return queryset

    def covers(self, merchant: Merchant) -> bool:
        return (self.districts is None or merchant.district in self.districts) and (
            self.categories is None or merchant.category in self.categories
        )


CITY = Jurisdiction()


def jurisdiction_of(user) -> Jurisdiction:
    """The jurisdiction of a regulator user (the whole city until item 1 stores one per regulator)."""
    return CITY
