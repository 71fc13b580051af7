"""Filing (备案): the rules profile's triggers make a merchant file with the regulator by a day.

Triggers, read from the active profile (core/profiles/<city>.json) for the merchant's category:

- A category whose industry part has its own triggers (Beijing's transport part) files when **more
  than** ``transport_filing_collected_threshold`` fen were collected for its cards in total, or
  **more than** ``transport_filing_unredeemed_cards`` cards are not fully redeemed; the filing is
  due within ``transport_filing_working_days`` working days.
- Every other merchant files when the prepaid balance it holds (escrow outstanding) is **at or
  above** ``filing_balance_threshold``; due within ``filing_due_working_days`` working days.

The working days are counted on China's holiday calendar (core.calendar.working_days_after) from
the Beijing day the daily check (``filings_check``) finds the trigger met; the filing records the
rule, the figure measured, the rule's value and the profile's version that decided it.

Then ``filing_submit`` (the merchant: details and documents), and ``filing_accept`` /
``filing_return`` (the regulator; called by regulator.services.filings, which writes the audit log).
Each is one transaction with the filing's row locked; the state changes only through the model's
transitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.translation import gettext as _

from core import clock
from core.calendar import working_days_after
from core.errors import InvalidInput, NotFound
from core.models import User
from core.rules import Profile, Rule, rules_active
from core.rules import rule as rule_in_force
from merchants.errors import FilingNotRequired, FilingNotSubmitted
from merchants.models import Filing, FilingDocument, Merchant
from merchants.selectors import FilingMeasures, filing_measures, merchants_to_check


@dataclass(frozen=True)
class _TriggerSpec:
    key: str  # the rule giving the threshold
    measure: str  # the FilingMeasures field compared with it
    strictly_above: bool  # "more than" (True) or "at or above" (False)
    days_key: str  # the rule giving the working days to file


# An industry part's own triggers replace the balance threshold for its categories.
PART_TRIGGERS = (
    _TriggerSpec("transport_filing_collected_threshold", "collected", True, "transport_filing_working_days"),
    _TriggerSpec("transport_filing_unredeemed_cards", "unredeemed", True, "transport_filing_working_days"),
)
BALANCE_TRIGGER = _TriggerSpec("filing_balance_threshold", "balance", False, "filing_due_working_days")

DOCUMENT_SUFFIXES = (".pdf", ".jpg", ".jpeg", ".png")
MAX_DOCUMENTS = 10
NOTE_MAX = 2000


@dataclass(frozen=True)
class FilingTrigger:
    """A trigger met: the rule, the merchant's figure, the rule's value, and the deadline's rule."""

    rule: Rule
    measured: int
    days_rule: Rule
    profile: Profile


def _rule(key: str, category: str, profile: Profile | None) -> Rule:
    # The active profile's rule with the deployment's overrides; a given profile's as its file says.
    return rule_in_force(key, category=category) if profile is None else profile.rule(key, category=category)


def _specs(category: str, profile: Profile) -> tuple[_TriggerSpec, ...]:
    part = profile.industry_for(category)
    own = tuple(spec for spec in PART_TRIGGERS if part is not None and spec.key in part.rules)
    return own or (BALANCE_TRIGGER,)


def filing_trigger(*, category: str, measures: FilingMeasures, profile: Profile | None = None) -> FilingTrigger | None:
    """The first trigger of the profile (default: the active one) that the merchant's figures meet."""
    active = profile or rules_active()
    for spec in _specs(category, active):
        found = _rule(spec.key, category, profile)
        value = getattr(measures, spec.measure)
        if value > found.value if spec.strictly_above else value >= found.value:
            return FilingTrigger(
                rule=found, measured=value, days_rule=_rule(spec.days_key, category, profile), profile=active
            )
    return None


def filing_require(*, merchant: Merchant, trigger: FilingTrigger, at: datetime | None = None) -> tuple[Filing, bool]:
    """Require a filing of the merchant for ``trigger``, due ``days_rule`` working days after the
    Beijing day of ``at`` (default now). Returns ``(filing, created)``: a merchant that already has an
    open or accepted filing keeps it."""
    at = at or clock.now()
    due_on = working_days_after(clock.local_date(at), trigger.days_rule.value, trigger.profile)
    with transaction.atomic():
        Merchant.objects.select_for_update().filter(pk=merchant.pk).first()  # serialises checks of one merchant
        existing = (
            Filing.objects.filter(merchant=merchant, state__in=[*Filing.OPEN, Filing.State.ACCEPTED])
            .order_by("-created_at")
            .first()
        )
        if existing is not None:
            return existing, False
        filing = Filing.objects.create(
            merchant=merchant,
            trigger=trigger.rule.key,
            measured=trigger.measured,
            threshold=trigger.rule.value,
            unit=trigger.rule.unit,
            profile=trigger.profile.key,
            profile_version=trigger.profile.version,
            due_on=due_on,
            due_by=clock.local_midnight(due_on + timedelta(days=1)),
            created_at=at,
        )
    return filing, True


def filings_check(*, at: datetime | None = None, profile: Profile | None = None) -> int:
    """The daily check: every trading merchant without an open or accepted filing is measured
    against its category's triggers, and a filing is required of each that meets one. Returns how
    many were required. Safe to run again."""
    active = profile or rules_active()
    created = 0
    for merchant in merchants_to_check().iterator(chunk_size=500):
        with_cards = _specs(merchant.category, active) != (BALANCE_TRIGGER,)
        trigger = filing_trigger(
            category=merchant.category,
            measures=filing_measures(merchant=merchant, with_cards=with_cards),
            profile=profile,
        )
        if trigger is not None:
            created += filing_require(merchant=merchant, trigger=trigger, at=at)[1]
    return created


def _documents_check(documents: Sequence[UploadedFile]) -> None:
    errors: list[str] = []
    if not documents:
        errors.append(_("Attach at least one document."))
    if len(documents) > MAX_DOCUMENTS:
        errors.append(_("Attach at most %(count)s documents.") % {"count": MAX_DOCUMENTS})
    for document in documents:
        name = document.name or ""
        if PurePath(name).suffix.lower() not in DOCUMENT_SUFFIXES:
            errors.append(_("%(name)s: only PDF, JPEG or PNG files are accepted.") % {"name": name})
        elif (document.size or 0) > settings.FILING_DOCUMENT_MAX_BYTES:
            limit = settings.FILING_DOCUMENT_MAX_BYTES // (1024 * 1024)
            errors.append(_("%(name)s is larger than %(size)s MB.") % {"name": name, "size": limit})
    if errors:
        raise InvalidInput(errors={"documents": errors})


def _refuse_submit(merchant: Merchant) -> NoReturn:
    if Filing.objects.filter(merchant=merchant, state__in=[Filing.State.SUBMITTED, Filing.State.ACCEPTED]).exists():
        raise FilingNotRequired(_("The filing is already with the regulator."))
    # Nothing required: the refusal names the rule that would require it.
    spec = _specs(merchant.category, rules_active())[0]
    raise FilingNotRequired(rule=_rule(spec.key, merchant.category, None))


def filing_submit(
    *,
    merchant: Merchant,
    legal_representative: str,
    contact_phone: str,
    deposit_bank: str,
    details: str = "",
    documents: Sequence[UploadedFile],
) -> Filing:
    """The merchant files: its registration details and documents go to the regulator. Refused with
    ``filing_not_required`` unless a filing is required of it or was returned to it."""
    at = clock.now()
    with transaction.atomic():
        filing = (
            Filing.objects.select_for_update()
            .filter(merchant=merchant, state__in=Filing.AWAITING_MERCHANT)
            .order_by("-created_at")
            .first()
        )
        if filing is None:
            _refuse_submit(merchant)
        _documents_check(documents)
        filing.submit()
        filing.legal_representative = legal_representative.strip()
        filing.contact_phone = contact_phone.strip()
        filing.deposit_bank = deposit_bank.strip()
        filing.details = details.strip()
        filing.submissions += 1
        filing.submitted_at = at
        filing.save(
            update_fields=[
                "state", "legal_representative", "contact_phone", "deposit_bank", "details", "submissions",
                "submitted_at",
            ]
        )  # fmt: skip
        for document in documents:
            FilingDocument.objects.create(
                filing=filing,
                submission=filing.submissions,
                file=document,
                name=PurePath(document.name or "document").name[:200],
                size=document.size or 0,
                content_type=(document.content_type or "application/octet-stream")[:100],
                uploaded_at=at,
            )
    return filing


def _lock_submitted(filing_id: Any) -> Filing:
    try:
        filing = Filing.objects.select_for_update().get(pk=filing_id)
    except (Filing.DoesNotExist, ValueError, ValidationError) as exc:
        raise NotFound() from exc
    if filing.state != Filing.State.SUBMITTED:
        raise FilingNotSubmitted()
    return filing


def _decide(filing: Filing, *, regulator: User, note: str) -> None:
    filing.regulator_note = note
    filing.decided_by = regulator
    filing.decided_at = clock.now()
    filing.save(update_fields=["state", "regulator_note", "decided_by", "decided_at"])


def filing_accept(*, filing_id: Any, regulator: User, note: str = "") -> Filing:
    """The regulator accepts a submitted filing (``filing_not_submitted`` otherwise): the merchant is filed."""
    with transaction.atomic():
        filing = _lock_submitted(filing_id)
        filing.accept()
        _decide(filing, regulator=regulator, note=note.strip()[:NOTE_MAX])
    return filing


def filing_return(*, filing_id: Any, regulator: User, note: str) -> Filing:
    """The regulator returns a submitted filing with a note saying what to correct; the merchant
    submits it again (``filing_not_submitted`` if it is not submitted)."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput(errors={"note": [_("Say what the merchant must correct.")]})
    with transaction.atomic():
        filing = _lock_submitted(filing_id)
        filing.return_to_merchant()
        _decide(filing, regulator=regulator, note=note[:NOTE_MAX])
    return filing
