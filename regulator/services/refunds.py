"""The regulator's hand on refunds: refund one card of a merchant in default, and send a failed
refund again. The refunds app does the work (``refunds.services``); each decision here also writes
the audit log, in the same transaction."""

from __future__ import annotations

from typing import Any

from consumers.models import Card
from core.idempotency import service_atomic
from core.models import User
from refunds.models import Refund
from refunds.selectors import merchant_default_reasons
from refunds.services import refund_for_default, refund_retry
from regulator.selectors.jurisdiction import jurisdiction_of, jurisdiction_of_actor
from regulator.services.audit import audit_record


def regulator_card_refund(*, regulator: User, card_id: Any, note: str = "") -> Refund:
    """Refund one card in full (``merchant_default``) while its merchant is in default (else
    ``merchant_not_in_default``). Asking again returns the same refund and writes nothing more.
    A card of a merchant outside the regulator's jurisdiction is not found."""
    note = (note or "").strip()
    jurisdiction_of(regulator).require(Card.objects.all(), pk=card_id)
    with service_atomic():
        refund, booked = refund_for_default(card_id=card_id, actor_id=regulator.pk, note=note)
        if booked:
            card = refund.card
            audit_record(
                verb="refund_merchant_default",
                actor_id=regulator.pk,
                merchant_id=card.merchant_id,
                target=f"card:{card.pk}",
                reason=note,
                changes={
                    "card_state": [None, card.state],
                    "refund": [None, str(refund.pk)],
                    "amount": [None, refund.amount],
                    "default_reasons": [None, merchant_default_reasons(merchant=card.merchant, card_id=card.pk)],
                },
            )
    return refund


def regulator_refund_retry(*, refund_id: Any, actor_id: int | None, actor_label: str = "") -> Refund:
    """Send a ``failed`` refund again under its first idempotency key (``refund_not_failed`` otherwise).
    A refund of a card outside the actor's jurisdiction is not found (a job, ``actor_id`` None, sees all)."""
    jurisdiction_of_actor(actor_id).require(Refund.objects.all(), pk=refund_id, path="card__merchant__")
    with service_atomic():
        refund = refund_retry(refund_id=refund_id)
        audit_record(
            verb="refund_retry",
            actor_id=actor_id,
            actor_label=actor_label,
            merchant_id=refund.card.merchant_id,
            target=f"refund:{refund.pk}",
            reason=refund.last_error,
            changes={"state": [Refund.State.FAILED, refund.state]},
        )
    return refund
