"""Refunds: eligibility and amounts of API.md, booking in the ledger, payment through the outbox."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from consumers import rules
from consumers.models import Card, Consumer
from consumers.services import card_apply_clock
from core import clock
from core.errors import InvalidInput, NotFound
from core.models import OutboxMessage
from core.outbox import DeliveryFailed, outbox_enqueue
from escrow.gateways import GatewayError, get_gateway
from escrow.models import Account, JournalEntry
from escrow.services import Leg, journal_post, singleton_account
from refunds.errors import BalanceNotSmall, CardNotRefundable, CoolingOffExpired
from refunds.models import Refund

CONSUMER_REASONS = (Refund.Reason.COOLING_OFF, Refund.Reason.SMALL_BALANCE, Refund.Reason.VOLUNTARY)
REFUND_TOPIC = "refund.send"


def _escrow_left(card: Card) -> int:
    return card.price - card.released_total - card.refunded_total


def refund_quote(*, card: Card, reason: str) -> tuple[int, int]:
    """``(amount, fee)`` a refund for ``reason`` would pay now, or the domain error saying why not.
    Reads the clock; does not write (call on a locked, clock-applied card to act on it)."""
    escrow = _escrow_left(card)
    if reason == Refund.Reason.COOLING_OFF:
        if card.state != Card.State.COOLING_OFF or card.first_service_at is not None or not card.in_cooling_off_window:
            raise CoolingOffExpired()
        return escrow, 0
    if reason == Refund.Reason.SMALL_BALANCE:
        if card.kind != "stored_value" or not (0 < card.balance < card.unit_price):
            raise BalanceNotSmall()
        if card.state not in (Card.State.COOLING_OFF, Card.State.ACTIVE, Card.State.FROZEN) or escrow <= 0:
            raise CardNotRefundable()
        return escrow, 0
    if reason == Refund.Reason.VOLUNTARY:
        if card.state not in (Card.State.ACTIVE, Card.State.FROZEN) or escrow <= 0:
            raise CardNotRefundable()
        fee = rules.voluntary_refund_fee(escrow=escrow, refund_fee_bps=card.refund_fee_bps)
        return escrow - fee, fee
    if reason == Refund.Reason.MERCHANT_CLOSURE:
        if card.state not in (Card.State.COOLING_OFF, Card.State.ACTIVE, Card.State.FROZEN) or escrow <= 0:
            raise CardNotRefundable()
        return escrow, 0
    raise InvalidInput(errors={"reason": [_("Unknown refund reason.")]})


def _refund_book(*, card: Card, reason: str, actor_id: int | None, actor_label: str = "") -> Refund:
    """Book the refund of a locked card: empty its escrow, enqueue the payment to the consumer."""
    amount, fee = refund_quote(card=card, reason=reason)
    refund = Refund(
        card=card, reason=reason, amount=amount, fee=fee, gateway=card.payment.gateway, created_at=clock.now()
    )
    if fee:
        journal_post(
            code=JournalEntry.Code.FEE,
            legs=[Leg(card.escrow_account_id, fee), Leg(card.merchant.settlement_account_id, -fee)],
            idempotency_key=f"refund-fee:{card.pk}",
            actor_id=actor_id,
            actor_label=actor_label,
            memo=f"{reason} refund fee",
        )
    journal_post(
        code=JournalEntry.Code.REFUND,
        legs=[Leg(card.escrow_account_id, amount), Leg(singleton_account(Account.Kind.REFUND_PAYABLE).id, -amount)],
        idempotency_key=f"refund:{card.pk}",
        actor_id=actor_id,
        actor_label=actor_label,
        memo=f"{reason} refund",
    )
    Card.objects.filter(pk=card.pk).update(
        released_total=F("released_total") + fee, refunded_total=F("refunded_total") + amount
    )
    card.released_total += fee
    card.refunded_total += amount
    card.refund()
    card.save(update_fields=["state"])
    refund.save()
    outbox_enqueue(topic=REFUND_TOPIC, payload={"refund_id": str(refund.pk)}, idempotency_key=f"refund:{refund.pk}")
    return refund


def _lock_card(**lookup) -> Card:
    try:
        return Card.objects.select_for_update(of=("self",)).select_related("merchant", "payment").get(**lookup)
    except (Card.DoesNotExist, ValueError) as exc:
        raise NotFound() from exc


def refund_request(*, consumer: Consumer, card_id: str, reason: str) -> Refund:
    """A consumer asks for their money back. Asking again for the same reason returns the refund."""
    if reason not in CONSUMER_REASONS:
        raise InvalidInput(errors={"reason": [_("Choose cooling_off, small_balance or voluntary.")]})
    with transaction.atomic(durable=True):
        card = _lock_card(pk=card_id, consumer=consumer)
        existing = Refund.objects.filter(card=card).first()
        if existing is not None:
            if existing.reason == reason:
                return existing
            raise CardNotRefundable()
        card_apply_clock(card)
        return _refund_book(card=card, reason=reason, actor_id=consumer.user_id)


def refund_for_closure(*, card_id: str, actor_id: int | None = None, actor_label: str = "") -> Refund | None:
    """Refund a card in full because its merchant closed (or the regulator ordered it). Returns
    None when the card has nothing left to refund; refunding twice returns the first refund."""
    with transaction.atomic(durable=True):
        card = _lock_card(pk=card_id)
        existing = Refund.objects.filter(card=card).first()
        if existing is not None:
            return existing
        card_apply_clock(card)
        if _escrow_left(card) <= 0 or card.state not in (Card.State.COOLING_OFF, Card.State.ACTIVE, Card.State.FROZEN):
            return None
        return _refund_book(
            card=card, reason=Refund.Reason.MERCHANT_CLOSURE, actor_id=actor_id, actor_label=actor_label
        )


def refund_mark_paid(*, refund: Refund, external_id: str) -> None:
    """The gateway paid the consumer: the money leaves custody (in the caller's transaction)."""
    if refund.state == Refund.State.PAID:
        return
    if refund.amount:
        journal_post(
            code=JournalEntry.Code.REFUND_PAID,
            legs=[
                Leg(singleton_account(Account.Kind.REFUND_PAYABLE).id, refund.amount),
                Leg(singleton_account(Account.Kind.CUSTODY).id, -refund.amount),
            ],
            idempotency_key=f"refund-paid:{refund.pk}",
            actor_label=f"gateway:{refund.gateway}",
            memo=f"refund {external_id}",
        )
    refund.pay()
    refund.external_id = external_id
    refund.paid_at = clock.now()
    refund.save(update_fields=["state", "external_id", "paid_at"])


def refund_deliver(message: OutboxMessage) -> None:
    """Outbox handler: send one refund through its gateway under the message's idempotency key."""
    refund = (
        Refund.objects.select_for_update(of=("self",))
        .select_related("card__payment")
        .get(pk=message.payload["refund_id"])
    )
    if refund.state != Refund.State.PENDING:
        return
    try:
        external_id = get_gateway(refund.gateway).refund_send(
            payment_external_id=refund.card.payment.external_id,
            amount=refund.amount,
            idempotency_key=message.idempotency_key,
        )
    except GatewayError as exc:
        raise DeliveryFailed(str(exc), retryable=exc.retryable) from exc
    refund_mark_paid(refund=refund, external_id=external_id)


def refund_delivery_dead(message: OutboxMessage) -> None:
    """Every attempt failed: the refund is ``failed`` and waits for an operator (money stays payable)."""
    refund = Refund.objects.select_for_update().get(pk=message.payload["refund_id"])
    if refund.state == Refund.State.PENDING:
        refund.fail()
        refund.failure_reason = message.last_error
        refund.save(update_fields=["state", "failure_reason"])
