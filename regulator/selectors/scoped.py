"""The lower apps' regulator reads (refunds, filings), narrowed to a regulator's jurisdiction: a
refund or filing of a merchant outside it is not found, and no list or count holds one."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from core.errors import NotFound
from merchants.models import Filing
from merchants.selectors import filing_get, filings_for_regulator
from refunds.models import Refund
from refunds.selectors import refunds_for_regulator, refunds_needing_attention
from regulator.selectors.jurisdiction import Jurisdiction


def regulator_refunds(
    *, jurisdiction: Jurisdiction, state: str | None = None, overdue: bool | None = None, ordering: str = "due_by"
) -> QuerySet[Refund]:
    """``refunds_for_regulator`` of the jurisdiction's merchants' cards."""
    refunds = refunds_for_regulator(state=state, overdue=overdue, ordering=ordering)
    return jurisdiction.narrow(refunds, path="card__merchant__")


def regulator_refunds_needing_attention(*, jurisdiction: Jurisdiction) -> QuerySet[Refund]:
    """``refunds_needing_attention`` of the jurisdiction's merchants' cards."""
    return jurisdiction.narrow(refunds_needing_attention(), path="card__merchant__")


def regulator_filings(
    *, jurisdiction: Jurisdiction, state: str | None = None, overdue: bool | None = None
) -> QuerySet[Filing]:
    """``filings_for_regulator`` of the jurisdiction's merchants."""
    return jurisdiction.narrow(filings_for_regulator(state=state, overdue=overdue), path="merchant__")


def regulator_filing_get(*, jurisdiction: Jurisdiction, filing_id: Any) -> Filing:
    """One filing of a merchant of the jurisdiction, else ``NotFound`` (as a missing one)."""
    filing = filing_get(filing_id=filing_id)
    if not jurisdiction.covers(filing.merchant):
        raise NotFound()
    return filing
