"""Build complaints through the real services."""

import itertools
from datetime import datetime

import time_machine

from complaints.models import Complaint
from complaints.services import complaint_file
from consumers.models import Consumer
from core.models import User
from merchants.models import Merchant

_n = itertools.count(1)


def at(moment: str | datetime):
    return time_machine.travel(moment, tick=False)


def hotline_call(
    merchant: Merchant,
    *,
    regulator: User,
    received_at: str | datetime,
    category: str = "service_quality",
    urgent: bool = False,
    reference: str | None = None,
) -> Complaint:
    """A hotline work order received at ``received_at`` (Beijing), entered at that moment."""
    if isinstance(received_at, str):
        received_at = datetime.fromisoformat(received_at)
    with at(received_at):
        return complaint_file(
            actor=regulator,
            merchant_id=merchant.pk,
            category=category,
            description="The caller says the gym is shut.",
            source="hotline",
            urgent=urgent,
            hotline_reference=reference or f"WO-{next(_n):06d}",
            received_at=received_at,
        )


def app_complaint(consumer: Consumer, merchant: Merchant, *, category: str = "refund_refused", urgent: bool = False):
    return complaint_file(
        actor=consumer.user,
        merchant_id=merchant.pk,
        category=category,
        description="They will not refund my card.",
        source="app",
        urgent=urgent,
    )
