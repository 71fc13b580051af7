"""Stripe's webhook events (PAYMENT_GATEWAY=stripe), each acted on once.

Stripe signs every delivery (``Stripe-Signature``) and delivers each event at least once, in no
promised order, until we answer 2xx. So a delivery is verified by the library before anything is
read from it, and its event id is recorded in ``StripeEvent``: a second delivery of a recorded
event answers ``duplicate`` and does nothing.

========================== ======================================================================
event                      what it does
========================== ======================================================================
payment_intent.succeeded   the card's payment succeeded: purchase entry, card in cooling-off
payment_intent.            an attempt failed; Stripe lets the consumer try again with the same
payment_failed             PaymentIntent, so the card stays ``pending_payment`` (``noted``)
payment_intent.canceled    the PaymentIntent was abandoned: card cancelled
charge.refunded            a refund that Stripe paid but we have not recorded (its answer was lost)
                           is marked paid
anything else              recorded and ``ignored``
========================== ======================================================================

``stripe_webhook_handle`` answers ``handled``, ``noted``, ``duplicate``, ``ignored`` or ``stale`` (a
cancellation reported for a payment already decided).
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from core import clock
from core.errors import NotFound
from core.gateways import GatewayError
from payments import handlers
from payments.errors import InvalidSignature, StripeUnreachable
from payments.gateways.stripe import StripeGateway
from payments.models import StripeEvent

log = logging.getLogger(__name__)

PAYMENT_OUTCOMES = {"payment_intent.succeeded": True, "payment_intent.canceled": False}
NOT_AN_EVENT = _("The payload is not a Stripe event.")


def _event_verify(*, payload: bytes, signature: str) -> dict[str, Any]:
    """The event in a delivery, once the library has checked its signature and its age."""
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature() from exc
    except (ValueError, TypeError, AttributeError) as exc:  # not UTF-8, not JSON, not an event object
        raise InvalidSignature(NOT_AN_EVENT) from exc
    data = event.to_dict()
    body = data.get("data")
    if not (
        isinstance(data.get("id"), str)
        and isinstance(data.get("type"), str)
        and isinstance(body, dict)
        and isinstance(body.get("object"), dict)
    ):
        raise InvalidSignature(NOT_AN_EVENT)
    return data


def _event_record(*, event_id: str, event_type: str) -> bool:
    """Record the event; False if it was recorded already (by a delivery that raced this one)."""
    try:
        with transaction.atomic():
            StripeEvent.objects.create(id=event_id, type=event_type, received_at=clock.now())
    except IntegrityError:
        return False
    return True


def stripe_webhook_handle(*, payload: bytes, signature: str) -> str:
    """Verify one delivery of a Stripe event and act on the event once."""
    if settings.PAYMENT_GATEWAY != "stripe":
        raise NotFound()
    event = _event_verify(payload=payload, signature=signature)
    event_id, event_type, obj = event["id"], event["type"], event["data"]["object"]
    if StripeEvent.objects.filter(pk=event_id).exists():
        return "duplicate"
    if event_type in PAYMENT_OUTCOMES:
        return _payment_outcome(
            event_id=event_id, event_type=event_type, intent=obj, succeeded=PAYMENT_OUTCOMES[event_type]
        )
    if event_type == "payment_intent.payment_failed":
        error = (obj.get("last_payment_error") or {}).get("message", "")
        log.info("stripe event %s: an attempt to pay %s failed: %s", event_id, obj.get("id"), error)
        return "noted" if _event_record(event_id=event_id, event_type=event_type) else "duplicate"
    if event_type == "charge.refunded":
        return _charge_refunded(event_id=event_id, event_type=event_type, charge=obj)
    return "ignored" if _event_record(event_id=event_id, event_type=event_type) else "duplicate"


def _payment_outcome(*, event_id: str, event_type: str, intent: dict[str, Any], succeeded: bool) -> str:
    if not (intent.get("metadata") or {}).get("card_id"):
        # Not a card's PaymentIntent (another integration on the same Stripe account).
        return "ignored" if _event_record(event_id=event_id, event_type=event_type) else "duplicate"
    # The registered handler (consumers' ``payment_settle``) is its own durable transaction, so it
    # cannot share one with the event row.
    # It runs first and the event is recorded after: it is idempotent (a payment told its outcome
    # twice does nothing), so a crash between the two, or two deliveries racing past the check
    # above, only repeats a no-op. Recording first would be wrong: a crash after the record would
    # make Stripe's redelivery a "duplicate" and the payment would never be settled.
    decided = handlers.payment_decided()  # the consumers' ``payment_settle``
    try:
        decided.handler(payment_external_id=intent["id"], succeeded=succeeded)
    except decided.already_decided:
        if succeeded:
            # Money arrived for a card already cancelled: answer 409 so Stripe keeps the event
            # failing and visible; an operator refunds the payment.
            log.error("stripe event %s: payment %s succeeded for a cancelled card", event_id, intent["id"])
            raise
        # A failure reported after the payment was decided (events arrive in any order).
        return "stale" if _event_record(event_id=event_id, event_type=event_type) else "duplicate"
    return "handled" if _event_record(event_id=event_id, event_type=event_type) else "duplicate"


def _charge_refunds(charge: dict[str, Any]) -> list[dict[str, Any]]:
    """The refunds of a charge: in the event if its API version includes them, else asked of Stripe."""
    listed = (charge.get("refunds") or {}).get("data")
    if listed is not None:
        return listed
    try:
        return StripeGateway().refund_list(payment_external_id=charge["payment_intent"])
    except GatewayError as exc:
        raise StripeUnreachable() from exc


def _charge_refunded(*, event_id: str, event_type: str, charge: dict[str, Any]) -> str:
    """Mark paid the refund Stripe paid for this charge's payment if we have not: the outbox's
    answer from Stripe was lost and its retry has not run yet (or the message died)."""
    intent_id = charge.get("payment_intent")
    if not intent_id:
        return "ignored" if _event_record(event_id=event_id, event_type=event_type) else "duplicate"
    paid_at_stripe = [r for r in _charge_refunds(charge) if r.get("status") == "succeeded"]
    # Unlike a payment, this handling is ours to write, so the event row and the refund share one
    # transaction: the event is recorded if and only if its effect is.
    with transaction.atomic(durable=True):
        if not _event_record(event_id=event_id, event_type=event_type):
            return "duplicate"
        handlers.refund_reported()(payment_external_id=intent_id, paid=paid_at_stripe)  # the refunds app's
        return "handled"
