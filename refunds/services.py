"""Refunds: eligibility and amounts of API.md, booking in the ledger, payment through the outbox,
deadlines (``due_by``, the overdue job) and an operator's retry of a failed refund.

Where a refund's life changes, for whoever must be told (notifications, once they exist):
- it becomes ``paid`` in ``refund_mark_paid`` (one refund; the Stripe webhook calls it too) and in
  ``refunds_deliver_batch`` (a batch of the local gateway: the one UPDATE that marks them paid);
- it becomes overdue in ``refunds_mark_overdue``;
- it becomes ``failed`` in ``refund_delivery_dead``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from consumers import rules
from consumers.disputes import disputes_end_for_refund
from consumers.errors import CardInDispute
from consumers.models import Card, Consumer, TopUp
from consumers.selectors import card_has_open_dispute, operator_change_cards_refunded
from consumers.services import card_apply_clock, card_change, card_lock
from consumers.services_top_ups import top_up_cooling_off_over
from core import clock, sql
from core.errors import InvalidInput, NotFound
from core.faults import fault_point
from core.formatting import beijing_date
from core.gateways import get_gateway
from core.idempotency import service_atomic
from core.jobs import jobs_stale
from core.models import OutboxMessage
from core.outbox import DeliveryFailed, outbox_enqueue, outbox_enqueue_many, outbox_resend
from core.rules import profile_version, rule
from escrow.models import Account, JournalEntry
from escrow.services import Leg, NewEntry, account_open, city_wide_account_id, journal_post_many
from merchants.accounts import custody_account_id, refund_payable_account_id
from merchants.models import Merchant, OperatorChange, Product
from notifications.models import Kind
from notifications.services import Notice, notifications_send_many
from refunds.errors import (
    BalanceNotSmall,
    CardNotRefundable,
    CoolingOffExpired,
    MerchantNotInDefault,
    RefundNotFailed,
)
from refunds.models import MassRefund, Refund, RefundEntitlement
from refunds.selectors import merchant_default_reasons

log = logging.getLogger(__name__)

# The reasons a consumer may ask for, the fee-free ones of a merchant in default first.
CONSUMER_REASONS = (
    Refund.Reason.MERCHANT_DEFAULT,
    Refund.Reason.COOLING_OFF,
    Refund.Reason.SMALL_BALANCE,
    Refund.Reason.VOLUNTARY,
)
OVERDUE_CHUNK = 500
REFUND_TOPIC = "refund.send"


def refund_quote(*, card: Card, reason: str, default_reasons: list[str] | None = None) -> tuple[int, int]:
    """``(amount, fee)`` a refund for ``reason`` would pay now, or the domain error saying why not.
    Reads the clock; does not write (call on a locked, clock-applied card to act on it).
    ``default_reasons``: why the merchant is in default towards the card, when the caller chose the
    card for that very reason (a change of operator's refunds); else they are read here."""
    escrow = card.escrow_left
    if reason == Refund.Reason.COOLING_OFF:
        if card.state != Card.State.COOLING_OFF or card.first_service_at is not None or not card.in_cooling_off_window:
            raise CoolingOffExpired(rule=rule("cooling_off_days"))
        return escrow, 0
    if reason == Refund.Reason.SMALL_BALANCE:
        if card.kind != Product.Kind.STORED_VALUE or not (0 < (card.balance or 0) < (card.unit_price or 0)):
            raise BalanceNotSmall()
        if card.state not in Card.HOLDING or escrow <= 0:
            raise CardNotRefundable()
        return escrow, 0
    if reason == Refund.Reason.VOLUNTARY:
        if card.state not in (Card.State.ACTIVE, Card.State.FROZEN) or escrow <= 0:
            raise CardNotRefundable()
        fee = rules.voluntary_refund_fee(escrow=escrow, refund_fee_bps=card.refund_fee_bps)
        return escrow - fee, fee
    if reason == Refund.Reason.MERCHANT_CLOSURE:
        if card.state not in Card.HOLDING or escrow <= 0:
            raise CardNotRefundable()
        return escrow, 0
    if reason == Refund.Reason.MERCHANT_DEFAULT:
        if card.state not in Card.HOLDING or escrow <= 0:
            raise CardNotRefundable()
        if default_reasons is None:
            default_reasons = merchant_default_reasons(merchant=card.merchant, card_id=card.pk)
        if not default_reasons:
            raise _not_in_default(card.merchant)
        return escrow, 0
    raise InvalidInput(errors={"reason": [_("Unknown refund reason.")]})


def _not_in_default(merchant: Merchant) -> MerchantNotInDefault:
    """The refusal of a ``merchant_default`` refund, saying so when a move's refund window has closed
    (with the rule that set its length, and its basis)."""
    until = merchant.relocation_refund_until
    if until is not None and clock.local_date() > until:
        window = rule("relocation_refund_days_after")
        return MerchantNotInDefault(
            _(
                "The fee-free refund the merchant's notice of moving allowed ended on %(date)s, %(days)s days "
                "after the move (%(basis)s)."
            )
            % {"date": beijing_date(until), "days": window.value, "basis": window.basis(get_language())},
            rule=window,
        )
    return MerchantNotInDefault()


def refund_due_by(created_at: datetime) -> datetime:
    """When a refund asked for at ``created_at`` must be paid by: the rules profile's
    ``refund_due_days`` later (the setting ``REFUND_DUE_DAYS`` overrides it)."""
    return created_at + timedelta(days=rule("refund_due_days").value)


def _refund_prepare(
    *,
    card: Card,
    reason: str,
    gateway: str,
    actor_id: int | None,
    actor_label: str,
    refund_payable_id: int,
    note: str = "",
    default_reasons: list[str] | None = None,
) -> tuple[Refund, list[NewEntry], sql.Change]:
    """The refund of a locked card, its ledger entries (any fee, then the refund, which empty the
    card's escrow) and the card's write, none written yet; the card object is brought up to date
    (totals, ``refunded``) by ``card_change``. ``note`` is added to the entries' memo (the audit
    log shows it as the entry's reason)."""
    amount, fee = refund_quote(card=card, reason=reason, default_reasons=default_reasons)
    now = clock.now()
    refund = Refund(
        card=card,
        reason=reason,
        amount=amount,
        fee=fee,
        gateway=gateway,
        created_at=now,
        due_by=refund_due_by(now),
        rules_version=profile_version(),  # the profile that set due_by
    )
    memo = f"{reason} refund: {note}"[:200] if note else f"{reason} refund"  # the memo column holds 200
    entries = []
    if fee:
        entries.append(
            NewEntry(
                code=JournalEntry.Code.FEE,
                legs=[Leg(card.escrow_account_id, fee), Leg(card.merchant.settlement_account_id, -fee)],
                idempotency_key=f"refund-fee:{card.pk}",
                actor_id=actor_id,
                actor_label=actor_label,
                memo=f"{reason} refund fee",
            )
        )
    entries.append(
        NewEntry(
            code=JournalEntry.Code.REFUND,
            legs=[Leg(card.escrow_account_id, amount), Leg(refund_payable_id, -amount)],
            idempotency_key=f"refund:{card.pk}",
            actor_id=actor_id,
            actor_label=actor_label,
            memo=memo,
        )
    )
    # The fee is released to the merchant and the rest refunded: the card's escrow is empty.
    return refund, entries, card_change(card, released=fee, refunded=amount)


def _refund_book(*, card: Card, reason: str, actor_id: int | None, actor_label: str = "", note: str = "") -> Refund:
    """Book the refund of a locked card: empty its escrow and enqueue the payment to the consumer.
    (``mass_refund_step`` does the same for a chunk of cards, writing them together.)"""
    refund, entries, change = _refund_prepare(
        card=card,
        reason=reason,
        gateway=card.payment.gateway,
        actor_id=actor_id,
        actor_label=actor_label,
        refund_payable_id=refund_payable_account_id(card.merchant),
        note=note,
    )
    # Together, even with a fee: every account is locked before any hash chain, as in a chunk of
    # a mass refund, so this refund cannot hold a chain while it waits for refunds payable.
    journal_post_many(entries)
    sql.execute_all([change.statement()])
    refund.save()
    outbox_enqueue(topic=REFUND_TOPIC, payload={"refund_id": str(refund.pk)}, idempotency_key=f"refund:{refund.pk}")
    return refund


def refund_request(*, consumer: Consumer, card_id: str, reason: str) -> Refund:
    """A consumer asks for their money back. Asking again for the same reason returns the refund."""
    if reason not in CONSUMER_REASONS:
        raise InvalidInput(errors={"reason": [_("Choose merchant_default, cooling_off, small_balance or voluntary.")]})
    with service_atomic():
        card = card_lock(pk=card_id, consumer=consumer)
        existing = Refund.objects.filter(card=card, top_up__isnull=True).first()
        if existing is not None:
            if existing.reason == reason:
                return existing
            raise CardNotRefundable()
        card_apply_clock(card)
        if card_has_open_dispute(card):
            raise CardInDispute()
        note = ""
        if reason == Refund.Reason.MERCHANT_DEFAULT:
            # The reasons (the merchant as read with the card's lock) go into the journal entry's
            # memo, which the regulator's audit log shows with the actor.
            note = _default_note(card=card)
        return _refund_book(card=card, reason=reason, actor_id=consumer.user_id, note=note)


def top_up_refund_quote(*, card: Card, top_up: TopUp) -> int:
    """Fen a cooling-off refund of the top-up pays now (all its money), or the domain error saying
    why not: its cooling-off period is over (by the clock, or a service since it was paid), or the
    card no longer holds it. Reads the clock; call on a locked card and top-up to act on it."""
    if top_up.state != TopUp.State.COOLING_OFF or top_up_cooling_off_over(top_up):
        raise CoolingOffExpired(rule=rule("cooling_off_days"))
    if card.state not in Card.HOLDING or card.escrow_left < top_up.amount or (card.balance or 0) < top_up.face_value:
        raise CardNotRefundable()
    return top_up.amount


def top_up_refund(*, consumer: Consumer, top_up_id: Any) -> Refund:
    """Return a top-up in full within its cooling-off period: only its money, back through its own
    payment; the card keeps the rest of its escrow and its state (``card_change(returned=...)``)
    and loses the face value the top-up bought. Asking again returns the refund."""
    with service_atomic():
        try:
            card_id = TopUp.objects.filter(pk=top_up_id, consumer=consumer).values_list("card_id", flat=True).first()
        except (ValueError, DjangoValidationError) as exc:
            raise NotFound() from exc
        if card_id is None:
            raise NotFound()
        card = card_lock(pk=card_id, consumer=consumer)  # still theirs: a card that changed hands is not
        top_up = TopUp.objects.select_for_update().get(pk=top_up_id)
        existing = Refund.objects.filter(top_up=top_up).first()
        if existing is not None:
            return existing
        card_apply_clock(card)
        amount = top_up_refund_quote(card=card, top_up=top_up)
        now = clock.now()
        refund = Refund(
            card=card,
            top_up=top_up,
            reason=Refund.Reason.COOLING_OFF,
            amount=amount,
            fee=0,
            gateway=top_up.gateway,
            created_at=now,
            due_by=refund_due_by(now),
            rules_version=profile_version(),
        )
        journal_post_many(
            [
                NewEntry(
                    code=JournalEntry.Code.REFUND,
                    legs=[
                        Leg(card.escrow_account_id, amount),
                        Leg(refund_payable_account_id(card.merchant), -amount),
                    ],
                    idempotency_key=f"refund:top-up:{top_up.pk}",
                    actor_id=consumer.user_id,
                    memo=f"cooling_off refund of top-up {top_up.pk}"[:200],
                )
            ]
        )
        card.balance = (card.balance or 0) - top_up.face_value
        change = card_change(card, returned=amount, add={"balance": -top_up.face_value})
        sql.execute_all([change.statement()])
        top_up.refund()
        top_up.decided_at = now
        top_up.save(update_fields=["state", "decided_at"])
        refund.save()
        outbox_enqueue(topic=REFUND_TOPIC, payload={"refund_id": str(refund.pk)}, idempotency_key=f"refund:{refund.pk}")
        return refund


def _default_note(*, card: Card, note: str = "") -> str:
    reasons = merchant_default_reasons(merchant=card.merchant, card_id=card.pk)
    text = "merchant in default: " + ", ".join(reasons) if reasons else ""
    return f"{text}; {note}" if note else text


def refund_for_default(*, card_id: Any, actor_id: int | None, note: str = "") -> tuple[Refund, bool]:
    """Refund one card in full because its merchant is in default, for the regulator (API.md:
    ``POST /regulator/cards/{id}/refund``): ``(refund, whether it was booked now)``. Runs in the
    caller's transaction if there is one (the regulator's audit line commits with it). Asking again
    returns the first ``merchant_default`` refund; a card refunded for another reason is
    ``card_not_refundable``; one with an open dispute ``card_in_dispute`` (the regulator decides the
    dispute first)."""
    with transaction.atomic():
        card = card_lock(pk=card_id)
        existing = Refund.objects.filter(card=card, top_up__isnull=True).first()
        if existing is not None:
            if existing.reason == Refund.Reason.MERCHANT_DEFAULT:
                return existing, False
            raise CardNotRefundable()
        card_apply_clock(card)
        if card_has_open_dispute(card):
            raise CardInDispute()
        refund = _refund_book(
            card=card,
            reason=Refund.Reason.MERCHANT_DEFAULT,
            actor_id=actor_id,
            note=_default_note(card=card, note=note),
        )
        return refund, True


def refund_entitlement_record(*, card_id: Any, source: str, actor_id: int | None = None) -> RefundEntitlement:
    """Record that the card's holder may take a ``merchant_default`` refund whatever the merchant's
    standing (the regulator upheld a complaint about it: ``source`` "complaint:<id>"). In the
    caller's transaction; recording the same source twice keeps the first."""
    with transaction.atomic():
        entitlement, _created = RefundEntitlement.objects.get_or_create(
            card_id=card_id,
            source=source,
            defaults={
                "reason": RefundEntitlement.Reason.COMPLAINT_UPHELD,
                "actor_id": actor_id,
                "created_at": clock.now(),
            },
        )
    return entitlement


def refund_for_closure(*, card_id: str, actor_id: int | None = None, actor_label: str = "") -> Refund | None:
    """Refund a card in full because its merchant closed (or the regulator ordered it). Returns
    None when the card has nothing left to refund; refunding twice returns the first refund. An open
    dispute of the card is dismissed first (``disputes_end_for_refund``): the disputed share is
    refunded with the rest."""
    with transaction.atomic(durable=True):
        card = card_lock(pk=card_id)
        existing = Refund.objects.filter(card=card, top_up__isnull=True).first()
        if existing is not None:
            return existing
        card_apply_clock(card)
        if card.escrow_left <= 0 or card.state not in Card.HOLDING:
            return None
        disputes_end_for_refund(card_ids=[card.pk])
        return _refund_book(
            card=card, reason=Refund.Reason.MERCHANT_CLOSURE, actor_id=actor_id, actor_label=actor_label
        )


def _refund_paid_entry(
    *, refund_id, amount: int, gateway: str, external_id: str, refund_payable_id: int, custody_id: int
) -> NewEntry:
    """The entry of a refund the gateway has paid: refunds payable → custody."""
    return NewEntry(
        code=JournalEntry.Code.REFUND_PAID,
        legs=[Leg(refund_payable_id, amount), Leg(custody_id, -amount)],
        idempotency_key=f"refund-paid:{refund_id}",
        actor_label=f"gateway:{gateway}",
        memo=f"refund {external_id}",
    )


def refund_mark_paid(*, refund: Refund, external_id: str) -> None:
    """The gateway paid the consumer: the money leaves custody (in the caller's transaction).
    One of the two places a refund becomes paid (the other: ``refunds_deliver_batch``)."""
    if refund.state == Refund.State.PAID:
        return
    if refund.amount:
        merchant = refund.card.merchant
        journal_post_many(
            [
                _refund_paid_entry(
                    refund_id=refund.pk,
                    amount=refund.amount,
                    gateway=refund.gateway,
                    external_id=external_id,
                    refund_payable_id=refund_payable_account_id(merchant),
                    custody_id=custody_account_id(merchant),
                )
            ]
        )
    refund.pay()
    refund.external_id = external_id
    refund.paid_at = clock.now()
    refund.save(update_fields=["state", "external_id", "paid_at", "attempts"])
    _refunds_notify(kind=Kind.REFUND_PAID, refund_ids=[refund.pk])


def _refunds_notify(*, kind: str, refund_ids: list) -> None:
    """Tell each refund's consumer that it was paid (``refund_paid``) or is late (``refund_late``),
    once per refund, in the caller's transaction (a notice about their money: every channel)."""
    rows = Refund.objects.filter(pk__in=refund_ids).values_list(
        "pk", "amount", "due_by", "card_id", "card__merchant_id", "card__merchant__name", "card__consumer__user_id"
    )
    notifications_send_many(
        kind=kind,
        notices=[
            Notice(
                user_id=user_id,
                event_key=f"{kind}:{pk}",
                params={"amount_fen": amount, "merchant": merchant, "due_by_at": due_by.isoformat()},
                card_id=card_id,
                merchant_id=merchant_id,
            )
            for pk, amount, due_by, card_id, merchant_id, merchant, user_id in rows
        ],
        about_money=True,
    )


def refund_deliver(message: OutboxMessage) -> None:
    """Outbox handler: send one refund through its gateway under the message's idempotency key."""
    refund = (
        Refund.objects.select_for_update(of=("self",))
        .select_related("card__payment", "card__merchant", "top_up")
        .get(pk=message.payload["refund_id"])
    )
    if refund.state != Refund.State.PENDING:
        return
    # A top-up's refund goes back through the top-up's own payment, the card's through the card's.
    paid_by = refund.top_up.external_id if refund.top_up is not None else refund.card.payment.external_id
    external_id = get_gateway(refund.gateway).refund_send(  # a GatewayError fails this delivery
        payment_external_id=paid_by,
        amount=refund.amount,
        idempotency_key=message.idempotency_key,
        first_sent_at=message.created_at,
    )
    fault_point("refund.after_gateway")
    refund.attempts += 1  # the row is locked above
    refund_mark_paid(refund=refund, external_id=external_id)


def refunds_deliver_batch(messages: list[OutboxMessage]) -> None:
    """Batch outbox handler (``outbox_deliver_batch``, for a gateway whose refunds are rows of this
    database): what ``refund_deliver`` does for every message, in the caller's one transaction.

    The pending refunds are locked in one statement and paid by the gateway in one call, under each
    message's key; each gets its own ``refund_paid`` entry, all posted together (their accounts,
    refunds payable and custody, locked once), and all are marked paid in one UPDATE. A refund no
    longer pending is left alone. A crash before the commit leaves the whole batch pending, bank
    rows included, and the next delivery pays it; a refund of another gateway sends the batch back
    to delivery one message at a time."""
    keys = {str(message.payload["refund_id"]): message.idempotency_key for message in messages}
    refunds = list(
        Refund.objects.select_for_update(of=("self",))
        .filter(pk__in=list(keys), state=Refund.State.PENDING)
        .order_by("pk")
        .annotate(paid_by=Coalesce("top_up__external_id", "card__payment__external_id"))
        .values_list(
            "pk",
            "amount",
            "gateway",
            "paid_by",
            "card__merchant__refund_payable_account_id",
            "card__merchant__custody_account_id",
        )
    )
    if not refunds:
        return
    names = {gateway for _, _, gateway, *_ in refunds}
    gateway = get_gateway(names.pop())
    # A gateway whose refunds are rows of this database pays a batch in one call (the sandbox bank).
    send_many = getattr(gateway, "refunds_send_many", None) if gateway.in_database else None
    if names or send_many is None:
        raise DeliveryFailed(f"refunds of the {gateway.name} gateway are sent one at a time")
    external_ids = send_many(
        refunds=[(payment_external_id, amount, keys[str(pk)]) for pk, amount, _, payment_external_id, *_ in refunds]
    )
    fault_point("refund.after_gateway")
    sql.rows_update_each(
        model=Refund,
        column="external_id",
        values={pk: external_id for (pk, *_), external_id in zip(refunds, external_ids, strict=True)},
        increments={"attempts": 1},
        state=Refund.State.PAID,
        paid_at=clock.now(),
    )  # the batch's refunds become paid here
    _refunds_notify(kind=Kind.REFUND_PAID, refund_ids=[pk for pk, *_ in refunds])
    # Posted last: the refunds-payable accounts, which the booking of the next chunk also locks,
    # stay locked only from here to the commit. Each refund is paid from its merchant's own
    # accounts (the city-wide ones for a merchant without them).
    city_payable = city_custody = 0
    if any(payable is None or custody is None for *_, payable, custody in refunds):
        city_payable = city_wide_account_id(Account.Kind.REFUND_PAYABLE)
        city_custody = city_wide_account_id(Account.Kind.CUSTODY)
    journal_post_many(
        [
            _refund_paid_entry(
                refund_id=pk,
                amount=amount,
                gateway=gateway_name,
                external_id=external_id,
                refund_payable_id=payable or city_payable,
                custody_id=custody or city_custody,
            )
            for (pk, amount, gateway_name, _, payable, custody), external_id in zip(refunds, external_ids, strict=True)
            if amount
        ]
    )


def refund_delivery_failed(message: OutboxMessage) -> None:
    """Outbox hook on every refused attempt (retried or not): the refund counts it and keeps the error."""
    Refund.objects.filter(pk=message.payload["refund_id"], state=Refund.State.PENDING).update(
        attempts=F("attempts") + 1, last_error=message.last_error
    )


def refund_delivery_dead(message: OutboxMessage) -> None:
    """Every attempt failed: the refund is ``failed`` and waits for an operator (money stays payable)."""
    refund = Refund.objects.select_for_update().get(pk=message.payload["refund_id"])
    if refund.state == Refund.State.PENDING:
        refund.fail()
        refund.failure_reason = message.last_error
        refund.last_error = message.last_error
        refund.save(update_fields=["state", "failure_reason", "last_error"])


def refund_retry(*, refund_id: Any) -> Refund:
    """Send a ``failed`` refund to the gateway again (an operator's decision), under the same
    idempotency key as every earlier attempt, so the consumer is paid once whatever crashed before.
    Runs in the caller's transaction if there is one. Not failed: ``refund_not_failed``."""
    with transaction.atomic():
        try:
            refund = Refund.objects.select_for_update().get(pk=refund_id)
        except (Refund.DoesNotExist, ValueError, DjangoValidationError) as exc:
            raise NotFound() from exc
        if refund.state != Refund.State.FAILED:
            raise RefundNotFailed()
        refund.retry()
        refund.save(update_fields=["state"])
        outbox_resend(topic=REFUND_TOPIC, payload={"refund_id": str(refund.pk)}, idempotency_key=f"refund:{refund.pk}")
    return refund


def refunds_mark_overdue(*, chunk_size: int = OVERDUE_CHUNK) -> int:
    """Mark every refund still unpaid at its ``due_by`` overdue (``overdue_at``, kept once set).
    The one place a refund becomes overdue. Works through the ``(state, due_by)`` index a chunk per
    transaction; a refund being paid right now (row locked) is skipped and, if still unpaid, taken
    next run. Safe to run any number of times. Returns how many were marked."""
    now = clock.now()
    marked = 0
    while True:
        with transaction.atomic():
            due = list(
                Refund.objects.select_for_update(skip_locked=True)
                .filter(state__in=[Refund.State.PENDING, Refund.State.FAILED], due_by__lt=now, overdue_at__isnull=True)
                .order_by("due_by", "pk")
                .values_list("pk", flat=True)[:chunk_size]
            )
            if not due:
                return marked
            Refund.objects.filter(pk__in=due).update(overdue_at=now)  # these refunds become overdue
            _refunds_notify(kind=Kind.REFUND_LATE, refund_ids=due)
            marked += len(due)


# --- refunding every card of a merchant -----------------------------------------------------

REFUNDABLE = Card.HOLDING  # the name consumers' pages read
MASS_REFUND_CHUNK = 250
# Refunds paid per transaction with the local gateway: a mass refund's chunk is paid in one.
REFUND_BATCH = MASS_REFUND_CHUNK


def cards_holding_escrow(*, merchant_id) -> QuerySet[Card]:
    """A merchant's paid cards that still hold escrow (the indexed (merchant, state) pair)."""
    return Card.objects.filter(merchant_id=merchant_id, state__in=Card.HOLDING)


def operator_change_cards(*, operator_change_id) -> QuerySet[Card]:
    """The cards a change of operator refunds on its day (``consumers.selectors.
    operator_change_cards_refunded``: paid before the day, holding escrow, no consent to continue)."""
    change = OperatorChange.objects.get(pk=operator_change_id)
    return operator_change_cards_refunded(change=change)


def _mass_refund_cards(job: MassRefund) -> QuerySet[Card]:
    """The cards the job still has to refund: every card holding escrow, or a change of operator's."""
    if job.operator_change_id is not None:
        return operator_change_cards(operator_change_id=job.operator_change_id)
    return cards_holding_escrow(merchant_id=job.merchant_id)


def mass_refund_start(*, merchant_id, reason: str, actor_id: int | None = None, operator_change_id=None) -> MassRefund:
    """Start refunding every card of the merchant that holds escrow (with ``operator_change_id``:
    every card that change refunds), in the background.
    Starting again while one runs returns the running one. May run inside a caller's transaction
    (the regulator's order commits with its job); the first chunk is queued once it commits."""
    with transaction.atomic():
        running = (
            MassRefund.objects.select_for_update()
            .filter(merchant_id=merchant_id, state__in=[MassRefund.State.QUEUED, MassRefund.State.RUNNING])
            .first()
        )
        if running is not None:
            return running
        now = clock.now()
        job = MassRefund(
            merchant_id=merchant_id,
            reason=reason,
            actor_id=actor_id,
            operator_change_id=operator_change_id,
            created_at=now,
            updated_at=now,
        )
        job.total = _mass_refund_cards(job).count()
        job.save()
        transaction.on_commit(lambda: mass_refund_kick(job_id=job.pk))
    return job


def mass_refund_kick(*, job_id: int) -> None:
    from refunds.tasks import mass_refund_step_task

    try:
        mass_refund_step_task.delay(job_id)
    except Exception:  # noqa: BLE001 (the job is in the database; the sweep resumes it)
        log.warning("broker unavailable: mass refund %s waits for the sweep", job_id)


def mass_refund_step(*, job_id: int, chunk: int = MASS_REFUND_CHUNK) -> bool:
    """Refund the next ``chunk`` cards of the job in one transaction. Returns whether cards remain.

    The chunk locks its cards in primary-key order and re-checks their state under the lock, so
    two steps racing (a redelivered task beside a live one) never refund a card twice. Each card
    gets its own ledger entries, as ``refund_for_closure`` would post them (and its open dispute is
    dismissed, as there); the chunk's cards,
    refunds and outbox messages are written with one statement each, and its entries are posted
    together last, so the refunds payable account (which the payments of earlier chunks lock too)
    stays locked only from there to the commit."""
    job = MassRefund.objects.select_related("merchant").get(pk=job_id)
    if job.state not in (MassRefund.State.QUEUED, MassRefund.State.RUNNING):
        return False
    actor_label = f"mass_refund:{job.pk}"
    # A change of operator refunds as merchant_default (the holder did not consent to continue),
    # the reason written in each refund entry's memo; a closure or an order as merchant_closure.
    reason, default_reasons, note = Refund.Reason.MERCHANT_CLOSURE, None, ""
    if job.operator_change_id is not None:
        reason, default_reasons = Refund.Reason.MERCHANT_DEFAULT, ["operator_changed"]
        note = f"merchant in default: operator_changed; operator change {job.operator_change_id}"
    with transaction.atomic(durable=True):
        # Any ``chunk`` cards still to refund, found on the (merchant, state) index. Ordering
        # them by pk here would make every step skip, in pk order, all the cards refunded before.
        ids = list(_mass_refund_cards(job).values_list("pk", flat=True)[:chunk])
        cards = list(
            Card.objects.select_for_update(of=("self",))
            .select_related("payment")
            .filter(pk__in=ids, state__in=Card.HOLDING)
            .order_by("pk")
        )
        refunded = set(Refund.objects.filter(card__in=cards, top_up__isnull=True).values_list("card_id", flat=True))
        refund_payable_id = refund_payable_account_id(job.merchant)
        refunds: list[Refund] = []
        entries: list[NewEntry] = []
        changes: list[sql.Change] = []
        for card in cards:
            card.merchant = job.merchant  # every card of the job is its merchant's
            card_apply_clock(card)
            if card.pk in refunded or card.escrow_left <= 0:
                continue
            refund, card_entries, change = _refund_prepare(
                card=card,
                reason=reason,
                gateway=card.payment.gateway,
                actor_id=job.actor_id,
                actor_label=actor_label,
                refund_payable_id=refund_payable_id,
                note=note,
                default_reasons=default_reasons,
            )
            refunds.append(refund)
            entries += card_entries
            changes.append(change)
        if refunds:
            # An open dispute of a card refunded now ends: the disputed share is refunded with the rest.
            disputes_end_for_refund(card_ids=[refund.card_id for refund in refunds])
            sql.update_each(changes)  # each card's change, as _refund_book writes one: one UPDATE for the chunk
            sql.rows_insert(
                model=Refund,
                fields=["id", "card", "reason", "amount", "fee", "gateway", "created_at", "due_by", "rules_version"],
                rows=[
                    (r.pk, r.card_id, r.reason, r.amount, r.fee, r.gateway, r.created_at, r.due_by, r.rules_version)
                    for r in refunds
                ],
            )
            outbox_enqueue_many(
                topic=REFUND_TOPIC, items=[({"refund_id": str(r.pk)}, f"refund:{r.pk}") for r in refunds]
            )
            journal_post_many(entries)
        job = MassRefund.objects.select_for_update().get(pk=job_id)
        if job.state == MassRefund.State.QUEUED:
            job.start()
        job.done += len(refunds)
        job.updated_at = clock.now()
        more = bool(ids)
        if not more:
            job.finish()
            job.finished_at = clock.now()
        job.save(update_fields=["state", "done", "updated_at", "finished_at"])
    fault_point("mass_refund.after_chunk")
    return more


def mass_refunds_resume() -> int:
    """The sweep: kick every job that has not moved for two minutes (its worker died)."""
    stale = jobs_stale(MassRefund)
    for job_id in stale:
        mass_refund_kick(job_id=job_id)
    return len(stale)


# --- a merchant's own custody and refunds-payable accounts ---------------------------------


@dataclass(frozen=True, slots=True)
class CustodySplit:
    """What ``merchant_custody_split`` moved for one merchant (fen)."""

    merchant_id: Any
    custody: int  # its cards' escrow + its settlement balance + its refunds booked but not paid
    refund_payable: int  # its refunds booked but not paid
    split_now: bool  # False: it had its own accounts already, nothing moved


def merchant_custody_split(*, merchant_id: Any) -> CustodySplit:
    """Give a merchant signed up before per-merchant accounts existed its own custody and
    refunds-payable accounts, and move its share of the city-wide ones onto them with one balanced
    ``correction`` entry, in one transaction (``manage.py ledger_split_custody`` runs it per merchant).

    Its custody share is what the platform owes on its behalf: its cards' escrow, its settlement
    balance not yet paid out and its refunds booked but not yet paid; its refunds-payable share is
    those refunds. Every kind's total is unchanged, so ``ledger_verify`` reads the same custody and
    the same liabilities after as before. A merchant that has its own accounts already is left
    alone (the command can be run again after a stop). The merchant's row is locked first; money in
    flight for it while it is split (a payment or refund already past its merchant's read) would
    still post to the city-wide accounts, so run it while the workers and web servers are stopped.
    """
    with transaction.atomic(durable=True):
        merchant = Merchant.objects.select_for_update(of=("self",)).get(pk=merchant_id)
        if merchant.custody_account_id is not None:
            return CustodySplit(merchant.pk, 0, 0, split_now=False)
        escrow = Card.objects.filter(merchant=merchant).aggregate(total=Sum("escrow_account__balance"))["total"] or 0
        settlement = Account.objects.values_list("balance", flat=True).get(pk=merchant.settlement_account_id)
        unpaid = (
            Refund.objects.filter(
                card__merchant=merchant, state__in=[Refund.State.PENDING, Refund.State.FAILED]
            ).aggregate(total=Sum("amount"))["total"]
            or 0
        )
        custody = account_open(kind=Account.Kind.CUSTODY, name=f"custody: {merchant.name}")
        payable = account_open(kind=Account.Kind.REFUND_PAYABLE, name=f"refunds payable: {merchant.name}")
        legs = []
        share = escrow + settlement + unpaid
        if share:  # custody (a debit-side account): the merchant's gains what the city's loses
            legs += [Leg(custody.pk, share), Leg(city_wide_account_id(Account.Kind.CUSTODY), -share)]
        if unpaid:  # refunds payable (credit side): the city's owes less, the merchant's more
            legs += [Leg(city_wide_account_id(Account.Kind.REFUND_PAYABLE), unpaid), Leg(payable.pk, -unpaid)]
        if legs:
            journal_post_many(
                [
                    NewEntry(
                        code=JournalEntry.Code.CORRECTION,
                        legs=legs,
                        idempotency_key=f"custody-split:{merchant.pk}",
                        actor_label="ledger_split_custody",
                        memo=f"merchant {merchant.pk}: its own custody and refunds payable"[:200],
                    )
                ]
            )
        merchant.custody_account = custody
        merchant.refund_payable_account = payable
        merchant.save(update_fields=["custody_account", "refund_payable_account"])
        return CustodySplit(merchant.pk, share, unpaid, split_now=True)
