"""Reminders to merchants of complaints about to fall due (``complaint_due``).

A periodic job (beat, every 10 minutes) tells the merchant of every complaint still ``open`` whose
``respond_by`` is within ``COMPLAINT_DUE_REMIND_HOURS`` (6); the event key ``complaint_due:<id>``
makes it once per complaint, however often the job runs.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction

from complaints.models import Complaint
from core import clock
from notifications.models import Kind
from notifications.services import notification_send

COMPLAINT_DUE_REMIND_HOURS = 6


def complaints_due_remind() -> int:
    """Tell merchants of their unanswered complaints due within the window. Returns how many were told now."""
    now = clock.now()
    due = (
        Complaint.objects.filter(
            state=Complaint.State.OPEN,
            respond_by__gt=now,
            respond_by__lte=now + timedelta(hours=COMPLAINT_DUE_REMIND_HOURS),
        )
        .values_list("pk", "respond_by", "merchant_id", "merchant__user_id", "card_id")
        .order_by("respond_by")
    )
    told = 0
    for complaint_id, respond_by, merchant_id, user_id, card_id in due.iterator():
        with transaction.atomic():
            sent = notification_send(
                user_id=user_id,
                kind=Kind.COMPLAINT_DUE,
                event_key=f"complaint_due:{complaint_id}",
                params={"respond_by_at": respond_by.isoformat()},
                card_id=card_id,
                merchant_id=merchant_id,
                about_money=False,
            )
        told += sent is not None
    return told
