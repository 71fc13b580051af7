"""The regulator's decision on a dispute (a merchant contesting a service its consumer rejected).
The consumers app does the work (``consumers.disputes.dispute_decide``: upheld releases the
redemption's share once); the decision is the regulator's only within its jurisdiction (any other
dispute is "not found"), and writes the audit log in the same transaction."""

from __future__ import annotations

from typing import Any

from consumers.disputes import dispute_decide
from consumers.models import Dispute
from consumers.selectors import dispute_among
from core.idempotency import service_atomic
from core.models import User
from regulator.selectors.jurisdiction import jurisdiction_of
from regulator.services.audit import audit_record


def regulator_dispute_decide(*, regulator: User, dispute_id: Any, outcome: str, note: str = "") -> Dispute:
    """Uphold or dismiss an open dispute of a merchant in the regulator's jurisdiction. Deciding
    again with the same outcome returns the dispute and writes nothing more."""
    dispute_among(merchants=jurisdiction_of(regulator).merchants(), dispute_id=dispute_id)  # else not found
    with service_atomic():
        dispute, decided = dispute_decide(dispute_id=dispute_id, outcome=outcome, note=note, actor_id=regulator.pk)
        if decided:
            audit_record(
                verb="dispute_decide",
                actor_id=regulator.pk,
                merchant_id=dispute.merchant_id,
                target=f"dispute:{dispute.pk}",
                reason=dispute.note,
                changes={
                    "state": [Dispute.State.OPEN, dispute.state],
                    "amount": [None, dispute.released],
                    "card": [None, str(dispute.card_id)],
                },
            )
    return dispute
