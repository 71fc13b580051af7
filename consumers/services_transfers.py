"""Transfers of a card to another consumer by phone number (issue 19, item 1).

The holder offers the card (``card_transfer_offer``) to a phone number; the consumer signed up
with that number accepts (``card_transfer_accept``) or declines it; the holder may withdraw it
(``card_transfer_cancel``); an offer nobody answered by ``expires_at`` (``CARD_TRANSFER_TTL_HOURS``
after it was made) expires (``card_transfers_expire_due``, beat; accepting checks the clock
itself). No money moves and no fee is taken: the card's escrow account is the card's, so the new
holder simply holds the card, with everything left on it, under the same contract terms.

The transfer takes effect when accepted, and the merchant is told in the same transaction (under
the Supreme People's Court's 2025 interpretation a transfer binds the merchant once it is told).
The giver, the new holder and the merchant each get a notice; the new holder's contract is
reissued in their name (``consumers.contract``) and the giver's stays available as it stood.

An offer may be made to a phone number with no account yet: whoever signs up with it before the
offer expires finds it among their cards and may accept it. (Refusing unknown numbers would tell
any holder whether a number has an account here.) The holder's own number is refused (400).

Refused with 409 ``card_not_transferable``, ``reason`` saying why (``NOT_TRANSFERABLE``), when
offering and again when accepting: a card not paid, or finished (used up, refunded, cancelled); a
card whose merchant's releases the regulator froze (its holder may take a fee-free refund instead,
and nobody should be handed such a card); a card in its cooling-off period (it may be returned in
full instead); a top-up of it waiting for payment or in its own cooling-off period; a service
waiting for the holder's confirmation; a dispute about one of its services open; a card already
transferred ``transfers_per_card_per_year`` times in the last 365 days (the rules profile's limit,
so that cards do not become a resale market; the body adds ``rule`` and ``basis``); and, when
offering, a card already on offer. An answer to an offer no longer open is 409
``card_transfer_not_open``, its ``reason`` the offer's state.

Lock order: the card, then the transfer (then its top-ups), as card → redemption elsewhere.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from consumers.errors import CardNotTransferable, TransferNotOpen
from consumers.models import Card, CardTransfer, Consumer, Redemption, TopUp, phone_normalize
from consumers.selectors import card_has_open_dispute, consumers_with_phone
from consumers.services import card_apply_clock, card_change, card_lock
from consumers.services_top_ups import top_up_apply_clock
from core import clock, sql
from core.errors import InvalidInput, NotFound
from core.idempotency import keyed_id, service_atomic
from core.rules import rule
from notifications.models import Kind
from notifications.services import notification_send

_TRANSFER_IDS = uuid.UUID("2f4c8a61-9d3e-4b07-8c15-6e0a7b9d3f28")  # namespace of transfer ids derived from request keys
PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,18}$")  # as at sign-up
YEAR = timedelta(days=365)
CHUNK = 500


def _refusal(reason: str, **values: Any) -> str:
    """The words of a refusal ``reason`` (looked up when raised, in the request's language)."""
    texts = {
        "not_paid": _("This card has not been paid for yet."),
        "finished": _("This card is used up, refunded or cancelled: there is nothing left on it to transfer."),
        "frozen": _(
            "The regulator has frozen the merchant's releases: the card cannot change hands until the freeze is "
            "lifted. You may ask for a full refund of what is left instead."
        ),
        "cooling_off": _(
            "A card in its cooling-off period cannot be transferred: return it for a full refund instead, or "
            "offer it once the period has ended."
        ),
        "top_up_open": _("A top-up of this card waits for its payment or is in its own cooling-off period."),
        "awaiting_confirmation": _("A service on this card waits for the holder's confirmation."),
        "dispute_open": _("A dispute about a service on this card is still open."),
        "yearly_limit": _(
            "This card has been transferred %(count)s times in the last 12 months, the most allowed (%(basis)s)."
        ),
        "offer_open": _("This card is already offered to someone: withdraw that offer first."),
    }
    return texts[reason] % values if values else texts[reason]


# Every ``reason`` of ``card_not_transferable``, for the API's documentation.
NOT_TRANSFERABLE = (
    "not_paid",
    "finished",
    "frozen",
    "cooling_off",
    "top_up_open",
    "awaiting_confirmation",
    "dispute_open",
    "yearly_limit",
    "offer_open",
)


def _refuse(reason: str, **values: Any) -> CardNotTransferable:
    return CardNotTransferable(_refusal(reason, **values), reason=reason)


def _open_top_ups(card: Card) -> bool:
    """Whether a top-up of the (locked) card waits for payment or is still in its cooling-off
    period; one whose period is over by now is settled first."""
    open_top_ups = list(TopUp.objects.select_for_update().filter(card=card, state__in=TopUp.OPEN).order_by("pk"))
    for top_up in open_top_ups:
        top_up_apply_clock(top_up)
    return any(top_up.state in TopUp.OPEN for top_up in open_top_ups)


def transfers_this_year(card: Card) -> int:
    """Transfers of the card accepted in the last 365 days."""
    return CardTransfer.objects.filter(
        card=card, state=CardTransfer.State.ACCEPTED, decided_at__gt=clock.now() - YEAR
    ).count()


def card_transfer_refusal(card: Card) -> CardNotTransferable | None:
    """Why the (locked, clock-applied) card cannot change hands now, as the error to raise, or None.
    An open offer is not among the reasons (the offer checks it)."""
    if card.state == Card.State.PENDING_PAYMENT:
        return _refuse("not_paid")
    if card.state in (Card.State.EXHAUSTED, Card.State.REFUNDED, Card.State.CANCELLED):
        return _refuse("finished")
    if card.state == Card.State.FROZEN or card.merchant.releases_frozen:
        return _refuse("frozen")
    if card.state == Card.State.COOLING_OFF:
        return _refuse("cooling_off")
    if _open_top_ups(card):
        return _refuse("top_up_open")
    waiting = Redemption.objects.filter(
        card=card, state=Redemption.State.AWAITING_CONFIRMATION, expires_at__gt=clock.now()
    )
    if waiting.exists():
        return _refuse("awaiting_confirmation")
    if card_has_open_dispute(card):
        return _refuse("dispute_open")
    limit = rule("transfers_per_card_per_year", category=card.merchant.category)
    count = transfers_this_year(card)
    if count >= limit.value:
        error = _refuse("yearly_limit", count=count, basis=limit.basis(get_language()))
        error.rule = limit
        return error
    return None


def _lock_transfer(*, transfer_id, **lookup) -> tuple[Card, CardTransfer]:
    """Lock a transfer's card, then the transfer; ``lookup`` narrows whose it is (the giver's, or
    offered to a phone). Anyone else's is "not found"."""
    try:
        card_id = CardTransfer.objects.filter(pk=transfer_id, **lookup).values_list("card_id", flat=True).first()
    except (ValueError, TypeError) as exc:
        raise NotFound() from exc
    if card_id is None:
        raise NotFound()
    card = card_lock(pk=card_id)
    return card, CardTransfer.objects.select_for_update().get(pk=transfer_id)


def _recipient(consumer: Consumer) -> dict[str, Any]:
    return {"to_phone": phone_normalize(consumer.phone)}


def _user_id(consumer_id) -> int:
    return Consumer.objects.filter(pk=consumer_id).values_list("user_id", flat=True).get()


# --- the holder's offer ----------------------------------------------------------------------------


def card_transfer_offer(
    *, consumer: Consumer, card_id, to_phone: str, idempotency_key: str | None = None
) -> CardTransfer:
    """The holder offers their card to the consumer with ``to_phone`` (see the module docstring).
    Under an ``idempotency_key`` (a page's form sent twice) a repeat returns the first offer."""
    phone = phone_normalize(to_phone or "")
    if not PHONE.match(to_phone or "") or not phone:
        raise InvalidInput(errors={"to_phone": [_("Enter a mobile phone number.")]})
    transfer_id = keyed_id(_TRANSFER_IDS, idempotency_key)
    with service_atomic():
        card = card_lock(pk=card_id, consumer=consumer)  # someone else's card: "not found", whatever the phone
        if phone == phone_normalize(consumer.phone):
            raise InvalidInput(errors={"to_phone": [_("This is your own phone number.")]})
        if idempotency_key:
            made = CardTransfer.objects.filter(pk=transfer_id, from_consumer=consumer).first()
            if made is not None:
                return made
        card_apply_clock(card)
        refusal = card_transfer_refusal(card)
        if refusal is not None:
            raise refusal
        for open_offer in CardTransfer.objects.select_for_update().filter(card=card, state=CardTransfer.State.OFFERED):
            if clock.now() < open_offer.expires_at:
                raise _refuse("offer_open")
            _expire(card, open_offer)  # its time ran out before the job came to it
        now = clock.now()
        transfer = CardTransfer.objects.create(
            id=transfer_id,
            card=card,
            from_consumer=consumer,
            to_phone=phone,
            expires_at=now + timedelta(hours=settings.CARD_TRANSFER_TTL_HOURS),
            created_at=now,
        )
        for user_id in consumers_with_phone(phone=phone).exclude(pk=consumer.pk).values_list("user_id", flat=True):
            notification_send(
                user_id=user_id,
                kind=Kind.CARD_TRANSFER_OFFERED,
                event_key=f"card_transfer_offered:{transfer.pk}",
                params={
                    "sender": consumer.display_name,
                    "merchant": card.merchant.name,
                    "expires_at": transfer.expires_at.isoformat(),
                },
                card_id=card.pk,
                merchant_id=card.merchant_id,
                about_money=True,
            )
        return transfer


def card_transfer_cancel(*, consumer: Consumer, transfer_id) -> CardTransfer:
    """The holder withdraws an offer. Withdrawing twice returns the withdrawn offer."""
    with service_atomic():
        card, transfer = _lock_transfer(transfer_id=transfer_id, from_consumer=consumer)
        if transfer.state == CardTransfer.State.CANCELLED:
            return transfer
        if transfer.state != CardTransfer.State.OFFERED:
            raise TransferNotOpen(reason=transfer.state)
        transfer.cancel()
        transfer.decided_at = clock.now()
        transfer.save(update_fields=["state", "decided_at"])
        for user_id in consumers_with_phone(phone=transfer.to_phone).values_list("user_id", flat=True):
            notification_send(
                user_id=user_id,
                kind=Kind.CARD_TRANSFER_CANCELLED,
                event_key=f"card_transfer_cancelled:{transfer.pk}",
                params={"sender": consumer.display_name, "merchant": card.merchant.name},
                card_id=card.pk,
                merchant_id=card.merchant_id,
                about_money=False,
            )
        return transfer


# --- the answer of the consumer with that phone ------------------------------------------------------


def card_transfer_accept(*, consumer: Consumer, transfer_id) -> CardTransfer:
    """The consumer with the offer's phone takes the card: it is theirs, with everything on it.
    The giver, the new holder and the merchant are told. Accepting twice returns the transfer."""
    with service_atomic():
        card, transfer = _lock_transfer(transfer_id=transfer_id, **_recipient(consumer))
        if transfer.state == CardTransfer.State.ACCEPTED and transfer.to_consumer_id == consumer.pk:
            return transfer
        if transfer.state != CardTransfer.State.OFFERED:
            raise TransferNotOpen(reason=transfer.state)
        if clock.now() >= transfer.expires_at:
            raise TransferNotOpen(reason=CardTransfer.State.EXPIRED)
        if card.consumer_id != transfer.from_consumer_id or card.consumer_id == consumer.pk:
            raise TransferNotOpen()  # the card is no longer the giver's, or already the taker's
        card_apply_clock(card)
        refusal = card_transfer_refusal(card)
        if refusal is not None:
            raise refusal
        now = clock.now()
        transfer.accept()
        transfer.to_consumer = consumer
        transfer.decided_at = now
        transfer.save(update_fields=["state", "to_consumer", "decided_at"])
        giver_id = card.consumer_id
        card.consumer = consumer
        sql.execute_all([card_change(card, fields=["consumer"]).statement()])
        _accepted_notify(card=card, transfer=transfer, giver_id=giver_id, taker=consumer)
        return transfer


def _accepted_notify(*, card: Card, transfer: CardTransfer, giver_id, taker: Consumer) -> None:
    """Tell the giver, the new holder and the merchant (the transfer binds the merchant once told)."""
    giver = Consumer.objects.only("user_id", "display_name").get(pk=giver_id)
    accepted_at = transfer.decided_at.isoformat() if transfer.decided_at else ""
    notification_send(
        user_id=giver.user_id,
        kind=Kind.CARD_TRANSFER_ACCEPTED,
        event_key=f"card_transfer_accepted:{transfer.pk}",
        params={"recipient": taker.display_name, "merchant": card.merchant.name, "accepted_at": accepted_at},
        card_id=card.pk,
        merchant_id=card.merchant_id,
        about_money=True,
    )
    notification_send(
        user_id=taker.user_id,
        kind=Kind.CARD_TRANSFER_RECEIVED,
        event_key=f"card_transfer_received:{transfer.pk}",
        params={
            "sender": giver.display_name,
            "merchant": card.merchant.name,
            "url": reverse("web-consumer-card", args=[card.pk]),
        },
        card_id=card.pk,
        merchant_id=card.merchant_id,
        about_money=True,
    )
    notification_send(
        user_id=card.merchant.user_id,
        kind=Kind.CARD_TRANSFERRED,
        event_key=f"card_transferred:{transfer.pk}",
        params={
            "product": card.product.name,
            "code": card.counter_code_display,
            "recipient": taker.display_name,
            "accepted_at": accepted_at,
        },
        card_id=card.pk,
        merchant_id=card.merchant_id,
        about_money=True,
    )


def card_transfer_decline(*, consumer: Consumer, transfer_id) -> CardTransfer:
    """The consumer with the offer's phone says no; the card stays the giver's, who is told."""
    with service_atomic():
        card, transfer = _lock_transfer(transfer_id=transfer_id, **_recipient(consumer))
        if transfer.state == CardTransfer.State.DECLINED:
            return transfer
        if transfer.state != CardTransfer.State.OFFERED:
            raise TransferNotOpen(reason=transfer.state)
        transfer.decline()
        transfer.to_consumer = consumer
        transfer.decided_at = clock.now()
        transfer.save(update_fields=["state", "to_consumer", "decided_at"])
        notification_send(
            user_id=_user_id(transfer.from_consumer_id),
            kind=Kind.CARD_TRANSFER_DECLINED,
            event_key=f"card_transfer_declined:{transfer.pk}",
            params={"merchant": card.merchant.name},
            card_id=card.pk,
            merchant_id=card.merchant_id,
            about_money=False,
        )
        return transfer


# --- the clock ---------------------------------------------------------------------------------------


def _expire(card: Card, transfer: CardTransfer) -> None:
    """Expire a locked offer whose time ran out, and tell the giver."""
    transfer.expire()
    transfer.decided_at = clock.now()
    transfer.save(update_fields=["state", "decided_at"])
    notification_send(
        user_id=_user_id(transfer.from_consumer_id),
        kind=Kind.CARD_TRANSFER_EXPIRED,
        event_key=f"card_transfer_expired:{transfer.pk}",
        params={"merchant": card.merchant.name, "expires_at": transfer.expires_at.isoformat()},
        card_id=card.pk,
        merchant_id=card.merchant_id,
        about_money=False,
    )


def card_transfers_expire_due() -> int:
    """Expire every offer nobody answered in time (beat; safe to run any number of times)."""
    done = 0
    due = CardTransfer.objects.filter(state=CardTransfer.State.OFFERED, expires_at__lte=clock.now()).order_by("pk")
    while True:
        chunk = list(due.values_list("pk", "card_id")[:CHUNK])
        for transfer_id, card_id in chunk:
            with transaction.atomic(durable=True):
                card = card_lock(pk=card_id)
                transfer = CardTransfer.objects.select_for_update().get(pk=transfer_id)
                if transfer.state == CardTransfer.State.OFFERED and clock.now() >= transfer.expires_at:
                    _expire(card, transfer)
                    done += 1
        if len(chunk) < CHUNK:
            return done
