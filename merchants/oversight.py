"""Which merchants a regulator oversees, for the apps between merchants and the regulator.

Jurisdictions are the regulator app's (``regulator.selectors.jurisdiction``, floor 9), but a
regulator also reads cards (consumers), refunds and complaints through the views of those apps, and
closes complaints there. They must answer "not found" for a merchant outside the regulator's
jurisdiction without importing the regulator: the regulator registers its ``jurisdiction_of`` here
when Django starts (``RegulatorConfig.ready``), as it registers its audit writer with complaints.

``oversight_of(user).narrow(queryset, path="merchant__")`` keeps the rows whose merchant (reached by
``path``) the regulator ``user`` oversees; ``.covers(merchant)`` answers for one merchant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model, QuerySet

from merchants.models import Merchant

M = TypeVar("M", bound=Model)


class Oversight(Protocol):
    def narrow(self, queryset: QuerySet[M], *, path: str = "") -> QuerySet[M]: ...

    def covers(self, merchant: Merchant) -> bool: ...


_oversight_of: Callable[[Any], Oversight] | None = None


def oversight_register(oversight_of: Callable[[Any], Oversight]) -> None:
    """Set the function that gives a regulator user's jurisdiction."""
    global _oversight_of
    _oversight_of = oversight_of


def oversight_of(user: Any) -> Oversight:
    """The jurisdiction of regulator ``user``, through the registered function."""
    if _oversight_of is None:
        raise ImproperlyConfigured("no jurisdiction registered (is the regulator app installed?)")
    return _oversight_of(user)
