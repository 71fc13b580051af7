"""Regressions for what the chaos test (``test_chaos.py``) found, each pinned down alone."""

import threading
import time
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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_ledger_verified_while_money_moves_reads_one_snapshot_and_never_reports_a_sound_ledger_broken():
    """Found by the chaos test: ``GET /regulator/ledger/verify`` during traffic reported chains
    broken ("head differs from its last entry", "entries have no postings") on a sound ledger, its
    queries each seeing a different moment."""
    from django.db import connection

    from escrow.selectors import ledger_ok, ledger_verify
    from tests.escrow.ledger_helpers import funded_card

    for n in range(150):  # a ledger big enough that verifying it takes a while
        funded_card(1_000, name=f"before-{n}")
    stop = threading.Event()
    posted = []

    def post() -> None:
        try:
            while not stop.is_set():
                posted.append(funded_card(1_000, name="during"))
        finally:
            connection.close()

    writer = threading.Thread(target=post)
    writer.start()
    try:
        verdicts = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and len(verdicts) < 40:
            verdicts.append(ledger_verify())
    finally:
        stop.set()
        writer.join()
    assert len(posted) > 10, "nothing was posted while the ledger was verified"
    broken = [v["problems"] for v in verdicts if not ledger_ok(v)]
    assert broken == [], f"{len(broken)} of {len(verdicts)} verifications saw a sound ledger broken: {broken[:3]}"
    assert ledger_ok(ledger_verify())
