"""The regulator's decisions on filings (备案): accept or return a merchant's submitted filing. The
merchants app does the work (``merchants.services.filing``); each decision here also writes the
audit log, in the same transaction."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from core.models import User
from merchants.models import Filing
from merchants.services.filing import filing_accept, filing_return
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.services.audit import audit_record


def _audit(filing: Filing, *, verb: str, regulator: User) -> None:
    audit_record(
        verb=verb,
        actor_id=regulator.pk,
        merchant_id=filing.merchant_id,
        target=f"filing:{filing.pk}",
        reason=filing.regulator_note,
        changes={"state": [Filing.State.SUBMITTED, filing.state], "submission": [None, filing.submissions]},
    )


def regulator_filing_accept(*, filing_id: Any, regulator: User, note: str = "") -> Filing:
    """Accept a submitted filing (``filing_not_submitted`` otherwise), with an audit line. A filing
    of a merchant outside the regulator's jurisdiction is not found."""
    jurisdiction_of(regulator).require(Filing.objects.all(), pk=filing_id)
    with transaction.atomic():
        filing = filing_accept(filing_id=filing_id, regulator=regulator, note=note)
        _audit(filing, verb="filing_accept", regulator=regulator)
    return filing


def regulator_filing_return(*, filing_id: Any, regulator: User, note: str) -> Filing:
    """Return a submitted filing to its merchant with ``note`` (``filing_not_submitted`` otherwise),
    with an audit line. A filing of a merchant outside the regulator's jurisdiction is not found."""
    jurisdiction_of(regulator).require(Filing.objects.all(), pk=filing_id)
    with transaction.atomic():
        filing = filing_return(filing_id=filing_id, regulator=regulator, note=note)
        _audit(filing, verb="filing_return", regulator=regulator)
    return filing
