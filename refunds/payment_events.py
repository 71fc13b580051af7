"""What refunds do when the gateway reports a refund it paid (registered with ``payments.handlers``
in ``RefundsConfig.ready``)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from refunds.models import Refund
from refunds.services import refund_mark_paid


def refund_reported_handle(*, payment_external_id: str, paid: list[dict[str, Any]]) -> None:
    """Mark paid the card's pending Stripe refund that the gateway paid (``paid``: its succeeded
    refunds of the payment), if its answer to us was lost. Runs in the webhook's transaction."""
    # A pending refund has no Stripe id yet (it is stored when marked paid), so it is found by
    # the PaymentIntent it goes back through: the card's (at most one refund of the card), or a
    # top-up's (at most one refund of the top-up).
    refund = (
        Refund.objects.select_for_update(of=("self",))
        .filter(
            Q(card__payment__external_id=payment_external_id, top_up__isnull=True)
            | Q(top_up__external_id=payment_external_id),
            gateway="stripe",
        )
        .first()
    )
    if refund is None or refund.state != Refund.State.PENDING:
        return
    match = next((r for r in paid if r.get("amount") == refund.amount), None)
    if match is not None:
        refund_mark_paid(refund=refund, external_id=match["id"])
