"""A consumer's contact in full, for an inspection case that needs it (the personal information
protection law's "minimum necessary": regulators' lists and exports show names and phone numbers
masked, ``core.formatting.mask_name`` / ``mask_phone``).

``consumer_contact_reveal`` is the one way a regulator sees a consumer's whole name and phone
number, and each showing is a line of the audit log (who, whose, for which case, why), written in
the same transaction. The case's page calls it when the inspector asks, with the reason typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from consumers.models import Consumer
from core.errors import InvalidInput, NotFound
from core.formatting import mask_name, mask_phone
from core.models import User
from regulator.services.audit import audit_record

REASON_MAX = 500


@dataclass(frozen=True)
class ConsumerContact:
    consumer_id: str
    name: str
    phone: str

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


def consumer_contact_reveal(
    *, regulator: User, consumer: Consumer, case_id: Any, reason: str, merchant_id: Any = None
) -> ConsumerContact:
    """``consumer``'s full name and phone number for ``regulator``, within inspection case
    ``case_id`` (of the merchant ``merchant_id``), for ``reason``; the audit log records the showing.

    The caller has already found the case as this regulator's; a reason is required (1 to
    ``REASON_MAX`` characters). Only a regulator may ask (anyone else: ``NotFound``)."""
    if not regulator.is_regulator:
        raise NotFound()
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if not reason or len(reason) > REASON_MAX:
        errors["reason"] = [f"why the case needs the contact, 1 to {REASON_MAX} characters"]
    if not str(case_id or "").strip():
        errors["case_id"] = ["the inspection case this is for"]
    if errors:
        raise InvalidInput(errors=errors)
    with transaction.atomic():
        audit_record(
            verb="contact_reveal",
            actor_id=regulator.pk,
            merchant_id=merchant_id,
            target=f"case:{case_id}",
            reason=reason,
            changes={"consumer": [None, str(consumer.pk)]},
        )
    return ConsumerContact(consumer_id=str(consumer.pk), name=consumer.display_name, phone=consumer.phone)
