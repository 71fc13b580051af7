"""Top-ups of stored-value cards (issue 19, item 4): a top-up is a purchase of its own.

- **Its request** (``top_up_request``): the holder of a stored-value card in use (cooling-off or
  active) at a merchant that sells asks to pay ``amount`` fen more. It must keep the card within
  the profile's card cap, counting everything paid in and not yet used (the card's escrow, and
  top-ups still waiting for their payment), and, at an education merchant, keep what the consumer
  holds unused there within the education limit. The gateway is asked for the payment first, as
  for a purchase, under a key derived from the top-up's id, which derives from the request's
  ``Idempotency-Key``, so a retry returns the same top-up and the same payment.
- **Its payment** is settled where a card's is (``consumers.services.payment_simulate`` under the
  sandbox bank, ``payment_settle`` from Stripe's webhook): its money goes into the card's escrow
  by a purchase entry of its own, its cooling-off period starts (counted as the card's: the
  payment day not counted, 24:00 Beijing time of the last day), and the card counts it in its
  money paid (``price``), face value and balance (``card_change(topped_up=...)``).
- **Its cooling-off period** ends by the clock or at the first service confirmed after it was paid
  (the service drew on the balance it topped up), as a card's ends at its first service. While it
  lasts, the top-up may be returned in full (``refunds.services.top_up_refund``): only its money,
  the card keeps the rest and its state. ``top_ups_settle_due`` (beat) marks the ended ones
  ``settled``; every rule reads the clock and the services itself (``top_up_apply_clock``).
- **Its contract annex** is ``consumers.contract.top_up_annex_pdf``.

Lock order: card → consumer (the education limit's count) → top-up, as card → payment elsewhere.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consumers import rules
from consumers.errors import CardNotTopUpable, GatewayUnavailable
from consumers.limits import HOLDING_FIELDS, holdings_collected, with_top_ups_waiting
from consumers.models import Card, Consumer, Redemption, TopUp
from consumers.services import card_apply_clock, card_lock
from core import clock, sql
from core.errors import InvalidInput, NotFound
from core.gateways import GatewayError, get_gateway
from core.idempotency import keyed_id, service_atomic
from core.rules import profile_version
from merchants.errors import MerchantSalesFrozen
from merchants.models import Product
from merchants.services.limits import (
    Collected,
    card_cap_check,
    education_limit_check,
    education_rules,
    lessons_of,
)

_TOP_UP_IDS = uuid.UUID("8e2b6f0a-4c1d-4f7e-b5a9-3d6c2e1f9a47")  # namespace of top-up ids derived from request keys
CHUNK = 500

# Why a card cannot be topped up: the ``reason`` of ``card_not_top_upable``.
NOT_TOP_UPABLE = {
    "not_stored_value": gettext_lazy("Only a stored-value card can be topped up."),
    "not_in_use": gettext_lazy("Only a card in use (in its cooling-off period or active) can be topped up."),
}


def _top_up_refused(card: Card) -> str | None:
    """Why the (locked, clock-applied) card cannot take a top-up now, or None."""
    if card.kind != Product.Kind.STORED_VALUE:
        return "not_stored_value"
    if card.state not in Card.REDEEMABLE:
        return "not_in_use"
    return None


def _top_up_check(card: Card) -> None:
    reason = _top_up_refused(card)
    if reason is not None:
        raise CardNotTopUpable(NOT_TOP_UPABLE[reason], reason=reason)
    if not card.merchant.selling:
        raise MerchantSalesFrozen()


def _holder_card(*, consumer: Consumer, card_id) -> Card:
    """The consumer's own card with its merchant, unlocked (before the gateway is asked)."""
    try:
        card = Card.objects.select_related("merchant").filter(pk=card_id, consumer=consumer).first()
    except (ValueError, TypeError) as exc:
        raise NotFound() from exc
    if card is None:
        raise NotFound()
    return card


def top_up_request(*, consumer: Consumer, card_id, amount: int, idempotency_key: str | None = None) -> TopUp:
    """Top up the consumer's stored-value card with ``amount`` fen: the top-up waits in
    ``pending_payment`` with a payment at the gateway (see the module docstring for the rules)."""
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 1:
        raise InvalidInput(errors={"amount": [_("A whole number of fen, at least 1.")]})
    card = _holder_card(consumer=consumer, card_id=card_id)
    # Refused before the gateway is asked (and again under the card's lock, where it counts).
    _top_up_check(card)
    top_up_id = keyed_id(_TOP_UP_IDS, idempotency_key)
    gateway = settings.PAYMENT_GATEWAY
    try:
        intent = get_gateway(gateway).payment_create(
            card_id=str(card.pk), amount=amount, idempotency_key=f"payment:top-up:{top_up_id}"
        )
    except GatewayError as exc:
        raise GatewayUnavailable() from exc
    with service_atomic():
        card = card_lock(pk=card.pk, consumer=consumer)
        if idempotency_key:
            made = TopUp.objects.filter(pk=top_up_id).first()
            if made is not None:
                return made  # a retry of this request: the top-up it made
        card_apply_clock(card)
        _top_up_check(card)
        face = rules.top_up_face_value(amount=amount, price=card.price, face_value=_required(card.face_value))
        if face < 1:
            raise InvalidInput(errors={"amount": [_("Too small to buy any face value on this card.")]})
        category = card.merchant.category
        waiting = TopUp.objects.filter(card=card, state=TopUp.State.PENDING_PAYMENT).aggregate(total=Sum("amount"))
        card_cap_check(category=category, held=card.escrow_left + (waiting["total"] or 0), adding=amount)
        if education_rules(category) is not None:
            education_limit_check(
                category=category,
                held=education_held(consumer=consumer, merchant_id=card.merchant_id),
                adding=Collected(sessions=lessons_of(value=face, unit_price=_required(card.unit_price))),
                field="amount",
            )
        now = clock.now()
        top_up = TopUp(
            id=top_up_id,
            card=card,
            consumer=consumer,
            amount=amount,
            face_value=face,
            gateway=gateway,
            external_id=intent.external_id,
            client_secret=intent.client_secret,
            purchase_key=idempotency_key,
            rules_version=profile_version(),
            created_at=now,
        )
        sql.insert(top_up)
        return top_up


def education_held(*, consumer: Consumer, merchant_id) -> Collected:
    """Lock the consumer's row (in the caller's transaction, after the card's), then count what
    they hold unused at the merchant: their cards, with their top-ups waiting for payment."""
    sql.execute_all([sql.lock_statement(Consumer, {"pk": consumer.pk})])
    cards = Card.objects.filter(state__in=Card.LIMIT_COUNTED, consumer_id=consumer.pk, merchant_id=merchant_id)
    rows = list(with_top_ups_waiting(cards).values_list(*HOLDING_FIELDS))
    return holdings_collected(rows, today=clock.local_date(clock.now()))


def _required(value: int | None) -> int:
    if value is None:
        raise ValueError("a stored-value card has a face value and a unit price")
    return value


# --- a top-up's cooling-off period -----------------------------------------------------------------


def top_up_served_since_paid(top_up: TopUp) -> bool:
    """Whether a service on its card was confirmed since the top-up was paid: its cooling-off ends."""
    if top_up.paid_at is None:
        return False
    return Redemption.objects.filter(
        card_id=top_up.card_id, state=Redemption.State.CONFIRMED, decided_at__gte=top_up.paid_at
    ).exists()


def top_up_cooling_off_over(top_up: TopUp) -> bool:
    """Its cooling-off period is over, by the clock or by a service since it was paid."""
    return top_up.state == TopUp.State.COOLING_OFF and (
        not top_up.in_cooling_off_window or top_up_served_since_paid(top_up)
    )


def top_up_apply_clock(top_up: TopUp) -> None:
    """Bring a locked top-up (of a locked card) up to date: one whose cooling-off period is over is
    ``settled``. Every rule on a top-up calls this first."""
    if top_up_cooling_off_over(top_up):
        top_up.settle()
        top_up.decided_at = clock.now()
        top_up.save(update_fields=["state", "decided_at"])


def _served_since_paid() -> Exists:
    return Exists(
        Redemption.objects.filter(
            card_id=OuterRef("card_id"), state=Redemption.State.CONFIRMED, decided_at__gte=OuterRef("paid_at")
        )
    )


def top_ups_settle_due() -> int:
    """Settle every top-up whose cooling-off period is over (beat; safe to run any number of times).
    Returns how many were settled now."""
    now = clock.now()
    done = 0
    due = (
        TopUp.objects.filter(state=TopUp.State.COOLING_OFF)
        .filter(Q(cooling_off_ends_at__lte=now) | Q(_served_since_paid()))
        .order_by("pk")
        .values_list("pk", "card_id")
    )
    while True:
        chunk = list(due[:CHUNK])
        settled = 0
        for top_up_id, card_id in chunk:
            with transaction.atomic(durable=True):
                card_lock(pk=card_id)
                top_up = TopUp.objects.select_for_update().get(pk=top_up_id)
                before = top_up.state
                top_up_apply_clock(top_up)
                settled += top_up.state != before
        done += settled
        if len(chunk) < CHUNK or not settled:
            return done
