"""Regressions for what the chaos test (``test_chaos.py``) found, each pinned down alone."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings

from consumers.models import Redemption
from consumers.services import redemption_request, redemptions_expire_due
from tests.cards import builders
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_a_redemption_past_its_deadline_is_expired_for_a_rejection_too_before_the_expiry_job_runs():
    """Found by the chaos test: rejecting a request older than REDEMPTION_TTL_MINUTES made it
    ``rejected`` (a rejection counted against the merchant's risk) while confirming it was refused
    as expired; what it became depended on whether the expiry job had run yet."""
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    consumer = client_for(card.consumer.user)
    late = redemption.expires_at + timedelta(seconds=1)
    assert late - redemption.created_at == timedelta(minutes=settings.REDEMPTION_TTL_MINUTES, seconds=1)
    with time_machine.travel(late, tick=False):
        response = consumer.post(f"/api/v1/redemptions/{redemption.pk}/reject", HTTP_IDEMPOTENCY_KEY="no-1")
        assert (response.status_code, response.json()["code"]) == (409, "redemption_expired")
        redemption.refresh_from_db()
        assert redemption.state == Redemption.State.AWAITING_CONFIRMATION  # untouched, for the job
        assert redemptions_expire_due() == 1
    redemption.refresh_from_db()
    assert redemption.state == Redemption.State.EXPIRED


def test_a_redemption_can_still_be_rejected_until_its_deadline():
    card = builders.paid_card(builders.session_pack(builders.merchant()))
    redemption = redemption_request(merchant=card.merchant, card_id=card.pk)
    with time_machine.travel(redemption.expires_at - timedelta(seconds=1), tick=False):
        response = client_for(card.consumer.user).post(f"/api/v1/redemptions/{redemption.pk}/reject")
    assert (response.status_code, response.json()["state"]) == (200, "rejected")
