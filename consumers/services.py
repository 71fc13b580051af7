"""Writes for consumers and their cards: purchase, payment, redemptions, the clock's jobs.

Lock order, everywhere: card → redemption/payment → ledger accounts (inside ``journal_post``) →
hash chain. A card's totals and state change in one place, ``card_change`` (purchases, releases,
refunds, mass refunds): its totals with ``column = column + delta`` updates on its locked row
(``F()`` in the ORM); the in-memory copy is brought along only so the state machine's conditions
can read it.

The statements of the request hot paths (purchase, payment, a redemption's request and
confirmation) are written in plain SQL through ``core.sql``: compiling them with the ORM cost more
Python than PostgreSQL spent running them (bench/flow.py). They read and write the same rows and
columns the ORM would, lock the same rows in the same order, and the state fields still change
only through the models' ``@transition`` methods, whose new value is then written.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from consumers import rules
from consumers.errors import (
    CardNotRedeemable,
    GatewayUnavailable,
    InsufficientBalance,
    OperatorConsentNotOpen,
    PaymentNotPending,
    RedemptionExpired,
    RedemptionNotPending,
)
from consumers.limits import HOLDING_FIELDS, holdings_collected, with_top_ups_waiting
from consumers.models import Card, Consumer, OperatorConsent, Payment, Redemption, TopUp, counter_code_new
from core import clock, sql
from core.errors import InvalidInput, NotFound
from core.gateways import GatewayError, PaymentIntent, get_gateway
from core.idempotency import keyed_id, service_atomic
from core.models import User
from core.rules import profile_version
from core.services import user_create
from escrow.models import Account, JournalEntry
from escrow.services import Leg, account_open, city_wide_account_id, journal_post
from merchants.accounts import custody_account_id
from merchants.errors import MerchantFrozen, MerchantSalesFrozen
from merchants.models import Merchant, OperatorChange, Product
from merchants.selectors import operator_change_open
from merchants.services.limits import Collected, education_limit_check, education_rules, plan_collected
from notifications.models import Kind
from notifications.services import notification_send, notification_settings_set
from payments.gateways.local import LocalGateway

REDEEMABLE = Card.REDEEMABLE  # the name merchants' pages read
_CARD_IDS = uuid.UUID("5b0d7c1e-3f0a-4e8e-9a43-7f2a1c9e6d10")  # namespace of card ids derived from purchase keys
# A new card's counter code is drawn at random (consumers.models.counter_code_new); one another card
# already holds is drawn again, this many times at most (each draw collides about once in a million
# purchases at a million cards, see there).
COUNTER_CODE_DRAWS = 3
_REDEMPTION_IDS = uuid.UUID("0c6f2a8e-51d4-4b7a-9e3c-2d8b7f41a5c3")  # ... of redemption ids derived from request keys


def consumer_register(*, username: str, password: str, display_name: str, phone: str, email: str = "") -> Consumer:
    """Sign up a consumer; the phone (and any e-mail address) is where their notices go too."""
    with transaction.atomic(durable=True):
        user = user_create(username=username, password=password, role=User.Role.CONSUMER)
        notification_settings_set(user=user, email=email, phone=phone)
        return Consumer.objects.create(user=user, display_name=display_name, phone=phone, created_at=clock.now())


# --- helpers on a locked card ---------------------------------------------------------------


def card_lock(**lookup) -> Card:
    """Lock one card (``SELECT ... FOR UPDATE`` of the card row only), with its merchant and payment.
    ``lookup`` is exact matches on the card's own fields (``pk=``, ``merchant=``, ``consumer=``)."""
    try:
        card = sql.get(Card, lookup=lookup, related=("merchant", "payment"), for_update=True)
    except ValueError as exc:
        raise NotFound() from exc
    if card is None:
        raise NotFound()
    return card


def card_change(
    card: Card,
    *,
    paid_at: datetime | None = None,
    topped_up: int = 0,
    released: int = 0,
    refunded: int | None = None,
    returned: int = 0,
    fields: Iterable[str] = (),
    add: Mapping[str, int] | None = None,
) -> sql.Change:
    """The one way a locked card's totals and state change (purchases, top-ups, releases, refunds,
    mass refunds): apply the change to the card in memory and return its write, which the caller
    runs (``sql.execute_all([change.statement()])``, or ``sql.update_each`` for a chunk of cards).

    - ``paid_at``: the purchase was paid then: the card ``pay``s and its cooling-off period is fixed.
    - ``topped_up``: a top-up's payment put this many more fen in its escrow: counted in ``price``
      (money paid), so ``price == escrow + released_total + refunded_total`` still holds; the caller
      adds the face value it bought (``add``: ``face_value`` and ``balance``).
    - ``released``: fen of its escrow went to the merchant (a service, a day of a pass, a refund's fee).
    - ``refunded``: a refund paid this many fen back to the consumer (with its fee, what was left):
      the card is ``refund``ed (the transition refuses if anything is left in escrow).
    - ``returned``: a top-up's cooling-off refund paid this many fen back: counted in
      ``refunded_total``; the card keeps its state and the rest of its escrow (the caller takes the
      top-up's face value off ``balance``).
    - An active card whose escrow is empty is ``exhaust``ed.

    The totals are written as ``column = column + delta`` on the locked row (``F()`` in the ORM);
    the state and the caller's ``fields`` (changed in memory with it: ``first_service_at``, a
    pass's dates) as they now are, and the caller's own ``add`` deltas (``balance``,
    ``sessions_remaining``) with the totals'."""
    written = set(fields)
    deltas = dict(add or {})
    if paid_at is not None:
        card.pay()
        card.paid_at = paid_at
        card.cooling_off_ends_at = rules.cooling_off_ends_at(paid_at)
        written |= {"state", "paid_at", "cooling_off_ends_at"}
    if topped_up:
        card.price += topped_up
        deltas["price"] = topped_up
    if released:
        card.released_total += released
        deltas["released_total"] = released
    if returned:
        card.refunded_total += returned
        deltas["refunded_total"] = returned
    if refunded is not None:
        if refunded:
            card.refunded_total += refunded
            deltas["refunded_total"] = deltas.get("refunded_total", 0) + refunded
        card.refund()
        written.add("state")
    elif card.escrow_left == 0 and card.state == Card.State.ACTIVE:
        card.exhaust()
        written.add("state")
    return sql.Change(card, tuple(sorted(written)), deltas)


def card_apply_clock(card: Card) -> None:
    """Bring a locked card up to date with the clock: a cooling-off period that has ended makes it
    active (and starts a period pass that had not started). Every rule calls this first."""
    if card.state == Card.State.COOLING_OFF and card.cooling_off_ends_at and clock.now() >= card.cooling_off_ends_at:
        card.activate()
        fields = ["state"]
        if card.kind == Product.Kind.PERIOD_PASS and card.valid_from is None:
            _start_pass(card, card.cooling_off_ends_at)
            fields += ["valid_from", "valid_until"]
        sql.execute_all([card_change(card, fields=fields).statement()])


def _start_pass(card: Card, moment: datetime) -> None:
    start = clock.local_midnight(clock.local_date(moment))
    card.valid_from = start
    card.valid_until = start + timedelta(days=_required(card.days))


def _required(value: int | None) -> int:
    """A value the card's kind requires (its product's check constraints and the purchase set it)."""
    if value is None:
        raise ValueError("a value the card's kind requires is missing")
    return value


def card_release_post(*, card: Card, amount: int, idempotency_key: str, actor_id: int | None, memo: str = "") -> bool:
    """Post the release of ``amount`` fen of a locked card's escrow to its merchant (in the
    caller's transaction); the caller counts it in the card (``card_change(released=...)``) and
    writes the card. False if this release was made before (the card already shows it): then
    nothing of it is to be counted or written."""
    if amount <= 0:
        return True
    entry = journal_post(
        code=JournalEntry.Code.RELEASE,
        legs=[Leg(card.escrow_account_id, amount), Leg(card.merchant.settlement_account_id, -amount)],
        idempotency_key=idempotency_key,
        actor_id=actor_id,
        memo=memo,
        need_id=False,  # the card is locked: no other post of this key can race this one
    )
    if entry.replayed:
        return False
    card.escrow_account.balance = entry.balances[card.escrow_account_id]
    return True


def card_release(*, card: Card, amount: int, idempotency_key: str, actor_id: int | None, memo: str = "") -> None:
    """Release ``amount`` fen of a locked card's escrow to its merchant (in the caller's
    transaction): an active card it empties is exhausted."""
    if amount > 0 and card_release_post(
        card=card, amount=amount, idempotency_key=idempotency_key, actor_id=actor_id, memo=memo
    ):
        sql.execute_all([card_change(card, released=amount).statement()])


# --- purchase and payment -------------------------------------------------------------------


def _product_on_sale(product_id) -> Product | None:
    """The product, with its merchant, if it is on sale (a malformed id raises what ``get()`` would)."""
    return sql.get(Product, lookup={"pk": product_id, "on_sale": True}, related=("merchant",))


def card_purchase(*, consumer: Consumer, product_id: str, idempotency_key: str | None = None) -> Card:
    """Buy a card: it waits in ``pending_payment`` with a payment at the gateway.

    The gateway is asked for the payment first (under a key derived from the new card's id), then
    the card, its escrow account and its payment are written in one transaction: a gateway that
    cannot be reached leaves nothing behind, and a retry under the same ``idempotency_key``
    returns the card already bought.

    At a merchant under the education limit, that transaction first locks the consumer's row and
    counts what they hold unused there (``_education_holdings``): the new card must keep it within
    the limit (``card_limit_exceeded`` naming the rule). The lock makes a consumer's purchases
    count one after the other, so two bought at once cannot both fit in the same room. Other
    merchants' purchases lock and read nothing more. The card records the rules profile's version
    in force (``rules_version``).
    """
    product = _product_on_sale(product_id)
    if product is None:
        raise InvalidInput(errors={"product": [_("No such product on sale.")]})
    if not product.merchant.selling:
        raise MerchantSalesFrozen()
    # A retried purchase gets the same card id, so the gateway sees the same payment key and
    # answers with the payment it already made instead of a second one.
    card_id = keyed_id(_CARD_IDS, idempotency_key)
    gateway = settings.PAYMENT_GATEWAY
    try:
        intent = get_gateway(gateway).payment_create(
            card_id=str(card_id), amount=product.price, idempotency_key=f"payment:{card_id}"
        )
    except GatewayError as exc:
        raise GatewayUnavailable() from exc
    now = clock.now()
    limits = education_rules(product.merchant.category)
    counter_code = counter_code_new()
    for draw in range(1, COUNTER_CODE_DRAWS + 1):
        try:
            return _card_write(
                consumer=consumer,
                product=product,
                card_id=card_id,
                gateway=gateway,
                intent=intent,
                idempotency_key=idempotency_key,
                counter_code=counter_code,
                limits_apply=limits is not None,
                now=now,
            )
        except IntegrityError:
            if idempotency_key:
                # The same purchase was made before (or is being made right now): that card is the answer.
                earlier = Card.objects.select_related("payment", "escrow_account").filter(purchase_key=idempotency_key)
                if (found := earlier.first()) is not None:
                    return found
            if draw == COUNTER_CODE_DRAWS or not Card.objects.filter(counter_code=counter_code).exists():
                raise
            counter_code = counter_code_new()  # another card holds the code drawn: draw again
    raise AssertionError("unreachable: the last draw returns or raises")


def _card_write(
    *,
    consumer: Consumer,
    product: Product,
    card_id: uuid.UUID,
    gateway: str,
    intent: PaymentIntent,
    idempotency_key: str | None,
    counter_code: str,
    limits_apply: bool,
    now: datetime,
) -> Card:
    """The purchase's transaction: the education limit checked under the consumer's lock, then the
    card, its escrow account and its payment written."""
    with service_atomic():
        if limits_apply:
            held = _education_holdings(consumer=consumer, merchant_id=product.merchant_id, card_id=card_id, now=now)
            if held is not None:
                education_limit_check(
                    category=product.merchant.category,
                    held=held,
                    adding=plan_collected(
                        kind=product.kind,
                        sessions=product.sessions,
                        days=product.days,
                        face_value=product.face_value,
                        unit_price=product.unit_price,
                    ),
                )
        account = account_open(kind=Account.Kind.CARD_ESCROW, name=f"escrow: {product.name}")
        card = Card(
            id=card_id,
            product=product,
            merchant=product.merchant,
            consumer=consumer,
            kind=product.kind,
            escrow_account=account,
            price=product.price,
            face_value=product.face_value,
            unit_price=product.unit_price,
            sessions=product.sessions,
            days=product.days,
            refund_fee_bps=product.refund_fee_bps,
            balance=product.face_value if product.kind == Product.Kind.STORED_VALUE else None,
            sessions_remaining=product.sessions if product.kind == Product.Kind.SESSION_PACK else None,
            purchase_key=idempotency_key,
            rules_version=profile_version(),
            counter_code=counter_code,
            created_at=now,
        )
        payment = Payment(
            card=card,
            gateway=gateway,
            amount=product.price,
            external_id=intent.external_id,
            client_secret=intent.client_secret,
            created_at=now,
        )
        sql.insert(card, payment)
    return card


def _education_holdings(
    *, consumer: Consumer, merchant_id: uuid.UUID, card_id: uuid.UUID, now: datetime
) -> Collected | None:
    """Lock the consumer's row (in the caller's transaction), then count what they hold unused at
    the merchant (consumers.limits); None if the card ``card_id`` is among them: this purchase was
    made before (a retry under its key), and is answered with that card, not checked again.

    The lock travels with the read in one round trip where writes wait (``sql.writes_ahead``); the
    read runs after the lock is granted, so it sees the card of a purchase that held it before."""
    sql.execute_all([sql.lock_statement(Consumer, {"pk": consumer.pk})])
    rows = list(
        with_top_ups_waiting(
            Card.objects.filter(
                Q(state__in=Card.LIMIT_COUNTED) | Q(pk=card_id), consumer_id=consumer.pk, merchant_id=merchant_id
            )
        ).values_list("pk", *HOLDING_FIELDS)
    )
    if any(row[0] == card_id for row in rows):
        return None
    return holdings_collected([row[1:] for row in rows], today=clock.local_date(now))


def _lock_payment(*, consumer: Consumer | None = None, **lookup) -> tuple[Payment, int | None]:
    """Lock a payment and its card (one statement), with the card's escrow account and its
    merchant loaded, and read the custody account the purchase is paid into with them: the
    merchant's own, or the city-wide one for a merchant without one (None before the ledger has
    one). ``lookup`` is exact matches on the payment's own fields; ``consumer`` must own the card."""
    if consumer is not None:
        lookup["card__consumer"] = consumer
    try:
        found = sql.get_with(
            Payment,
            lookup=lookup,
            related=("card__escrow_account", "card__merchant"),
            for_update=True,
            of=("self", "card"),
            scalars=[sql.Scalar(Account, "pk", kind=Account.Kind.CUSTODY, city_wide=True)],
        )
    except ValueError as exc:
        raise NotFound() from exc
    if found is None:
        raise NotFound()
    payment, (city_custody_id,) = found
    return payment, payment.card.merchant.custody_account_id or city_custody_id


def _payment_decide(*, payment: Payment, custody_id: int | None, succeeded: bool) -> Card:
    card = payment.card
    wanted = Payment.Status.SUCCEEDED if succeeded else Payment.Status.FAILED
    if payment.status == wanted:
        return card  # the gateway told us twice
    if payment.status != Payment.Status.PENDING:
        raise PaymentNotPending()
    now = clock.now()
    payment.decided_at = now
    if not succeeded:
        payment.fail()
        card.cancel()
        sql.execute_all(
            [sql.update_statement(payment, ["status", "decided_at"]), card_change(card, fields=["state"]).statement()]
        )
        return card
    payment.succeed()
    entry = journal_post(
        code=JournalEntry.Code.PURCHASE,
        # The card's leg first: it picks the hash chain, so a card's entries share one chain.
        legs=[
            Leg(card.escrow_account_id, -card.price),
            Leg(custody_id or city_wide_account_id(Account.Kind.CUSTODY), card.price),
        ],
        idempotency_key=f"purchase:{card.pk}",
        actor_label=f"gateway:{payment.gateway}",
        memo=f"payment {payment.external_id}",
        need_id=False,  # the payment and its card are locked
    )
    if not entry.replayed:
        card.escrow_account.balance = entry.balances[card.escrow_account_id]
    sql.execute_all(
        [sql.update_statement(payment, ["status", "decided_at"]), card_change(card, paid_at=now).statement()]
    )  # both rows were locked by ``_lock_payment``: writing them together is one round trip
    return card


def payment_settle(*, payment_external_id: str, succeeded: bool) -> Card:
    """The gateway's verdict on a payment (Stripe webhook): the purchase entry, or a cancelled card;
    for a top-up's payment, its entry into the card's escrow, or a cancelled top-up."""
    with transaction.atomic(durable=True):
        try:
            payment, custody_id = _lock_payment(external_id=payment_external_id)
        except NotFound:
            top_up, card = _lock_top_up(external_id=payment_external_id)
            return _top_up_payment_decide(top_up=top_up, card=card, succeeded=succeeded)
        return _payment_decide(payment=payment, custody_id=custody_id, succeeded=succeeded)


def payment_simulate(*, consumer: Consumer, payment_id: str, outcome: str) -> Card:
    """The local sandbox bank settles a payment as its consumer says (PAYMENT_GATEWAY=local): a
    card's, or a top-up's (whose id is its payment's id); the answer is the card either way."""
    if settings.PAYMENT_GATEWAY != "local":
        raise NotFound()
    if outcome not in ("succeeded", "failed"):
        raise InvalidInput(errors={"outcome": [_('Must be "succeeded" or "failed".')]})
    with service_atomic():
        try:
            payment, custody_id = _lock_payment(pk=payment_id, consumer=consumer)
        except NotFound:
            top_up, card = _lock_top_up(pk=payment_id, consumer=consumer)
            return _top_up_payment_decide(top_up=top_up, card=card, succeeded=outcome == "succeeded")
        card = _payment_decide(payment=payment, custody_id=custody_id, succeeded=outcome == "succeeded")
        if outcome == "succeeded":
            LocalGateway().payment_received(payment_external_id=payment.external_id, amount=card.price)
        card.payment = payment
        return card


# --- a top-up's payment (its request is consumers.services_top_ups') ---------------------------


def _lock_top_up(*, consumer: Consumer | None = None, **lookup) -> tuple[TopUp, Card]:
    """Lock a top-up's card, then the top-up (the card first, as everywhere). ``lookup`` is exact
    matches on the top-up's own fields; ``consumer`` must be who pays it."""
    if consumer is not None:
        lookup["consumer"] = consumer
    try:
        card_id = TopUp.objects.filter(**lookup).values_list("card_id", flat=True).first()
    except (ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc
    if card_id is None:
        raise NotFound()
    card = card_lock(pk=card_id)
    top_up = TopUp.objects.select_for_update().get(**lookup)
    return top_up, card


def _top_up_payment_decide(*, top_up: TopUp, card: Card, succeeded: bool) -> Card:
    """The gateway's verdict on a locked top-up of a locked card. Paid: its money goes into the
    card's escrow (a purchase entry of its own), its cooling-off period starts, and the card counts
    it in its money paid, face value and balance. A card that can no longer hold money when the
    payment arrives (refunded, used up) cancels the top-up instead under the sandbox bank, which
    then takes nothing; under Stripe the money did arrive, so this is refused (the webhook keeps
    the event failing and visible for an operator to refund it), as for a cancelled card."""
    paid = (TopUp.State.COOLING_OFF, TopUp.State.SETTLED, TopUp.State.REFUNDED)
    if (succeeded and top_up.state in paid) or (not succeeded and top_up.state == TopUp.State.CANCELLED):
        return card  # the gateway told us twice
    if top_up.state != TopUp.State.PENDING_PAYMENT:
        raise PaymentNotPending()
    now = clock.now()
    top_up.decided_at = now
    card_apply_clock(card)
    if succeeded and card.state not in Card.HOLDING:
        if top_up.gateway != "local":
            raise PaymentNotPending(_("The card can no longer take money; the payment must be refunded."))
        succeeded = False
    if not succeeded:
        top_up.cancel()
        top_up.save(update_fields=["state", "decided_at"])
        return card
    entry = journal_post(
        code=JournalEntry.Code.PURCHASE,
        legs=[  # the card's leg first: a card's entries share one hash chain
            Leg(card.escrow_account_id, -top_up.amount),
            Leg(custody_account_id(card.merchant), top_up.amount),
        ],
        idempotency_key=f"top-up:{top_up.pk}",
        actor_label=f"gateway:{top_up.gateway}",
        memo=f"top-up {top_up.pk} payment {top_up.external_id}"[:200],
        need_id=False,  # the card and the top-up are locked
    )
    top_up.pay()
    top_up.paid_at = now
    top_up.cooling_off_ends_at = rules.cooling_off_ends_at(now)
    top_up.save(update_fields=["state", "paid_at", "cooling_off_ends_at", "decided_at"])
    if entry.replayed:
        return card  # counted in the card when it was posted
    card.escrow_account.balance = entry.balances[card.escrow_account_id]
    card.face_value = _required(card.face_value) + top_up.face_value
    card.balance = _required(card.balance) + top_up.face_value
    change = card_change(
        card, topped_up=top_up.amount, add={"face_value": top_up.face_value, "balance": top_up.face_value}
    )
    sql.execute_all([change.statement()])
    if top_up.gateway == "local":
        LocalGateway().payment_received(payment_external_id=top_up.external_id, amount=top_up.amount)
    return card


# --- redemptions ----------------------------------------------------------------------------


def redemption_request(
    *, merchant: Merchant, card_id: str, amount: int | None = None, idempotency_key: str | None = None
) -> Redemption:
    """The merchant asks the consumer to confirm a service on their card.

    Under an ``idempotency_key`` (a page's form sent twice) a repeat returns the request the first
    one made instead of a second one: its id derives from the key, and the card's lock orders the two.
    """
    redemption_id = keyed_id(_REDEMPTION_IDS, idempotency_key)
    with service_atomic():
        card = card_lock(pk=card_id, merchant=merchant)
        if idempotency_key:
            made = Redemption.objects.filter(pk=redemption_id, merchant=merchant).first()
            if made is not None:
                return made
        card_apply_clock(card)
        if card.state not in REDEEMABLE:
            raise CardNotRedeemable()
        if merchant.releases_frozen:
            raise MerchantFrozen()
        sessions = None
        if card.kind == Product.Kind.STORED_VALUE:
            if amount is None:
                raise InvalidInput(errors={"amount": [_("Required for a stored-value card.")]})
            if amount > _required(card.balance):
                raise InsufficientBalance()
        else:
            if amount is not None:
                raise InvalidInput(errors={"amount": [_("Only stored-value cards are used by amount.")]})
            if card.kind == Product.Kind.SESSION_PACK:
                sessions = 1
            elif card.valid_until is not None and clock.now() >= card.valid_until:
                raise CardNotRedeemable(_("This pass has run out."))
        now = clock.now()
        redemption = Redemption(
            id=redemption_id,
            card=card,
            merchant=merchant,
            amount=amount,
            sessions=sessions,
            expires_at=now + timedelta(minutes=settings.REDEMPTION_TTL_MINUTES),
            created_at=now,
        )
        sql.insert(redemption)
        _service_requested_notify(card=card, redemption=redemption)
        return redemption


def _consumer_user_id(consumer_id: uuid.UUID) -> int:
    """The consumer's user (a prepared read: every service request tells its consumer)."""
    consumer = sql.get(Consumer, lookup={"pk": consumer_id})
    if consumer is None:
        raise NotFound()
    return consumer.user_id


def _service_requested_notify(*, card: Card, redemption: Redemption) -> None:
    """Tell the card's consumer a service waits for their confirmation (in the same transaction)."""
    params: dict[str, Any] = {
        "merchant": card.merchant.name,
        "expires_at": redemption.expires_at.isoformat(),
        "url": reverse("web-consumer-card", args=[card.pk]),
    }
    if redemption.amount is not None:
        params["amount_fen"] = redemption.amount
    notification_send(
        user_id=_consumer_user_id(card.consumer_id),
        kind=Kind.SERVICE_REQUESTED,
        event_key=f"service_requested:{redemption.pk}",
        params=params,
        card_id=card.pk,
        merchant_id=card.merchant_id,
        about_money=True,
    )


def _lock_redemption(*, consumer: Consumer, redemption_id: str) -> tuple[Card, Redemption]:
    """Lock a consumer's redemption and its card in one statement, with the card's merchant and
    escrow account."""
    try:
        redemption = sql.get(
            Redemption,
            lookup={"pk": redemption_id, "card__consumer": consumer},
            related=("card__merchant", "card__escrow_account"),
            for_update=True,
            of=("self", "card"),
        )
    except ValueError as exc:
        raise NotFound() from exc
    if redemption is None:
        raise NotFound()
    return redemption.card, redemption


def redemption_confirm(*, consumer: Consumer, redemption_id: str) -> Redemption:
    """The consumer confirms the service: exactly its share of escrow is released to the merchant.
    Confirming twice releases once."""
    with service_atomic():
        card, redemption = _lock_redemption(consumer=consumer, redemption_id=redemption_id)
        if redemption.state == Redemption.State.CONFIRMED:
            return redemption
        if redemption.state != Redemption.State.AWAITING_CONFIRMATION:
            raise RedemptionNotPending()
        if clock.now() >= redemption.expires_at:
            raise RedemptionExpired()
        card_apply_clock(card)
        if card.state not in REDEEMABLE:
            raise CardNotRedeemable()
        if card.merchant.releases_frozen:
            raise MerchantFrozen()

        escrow = card.escrow_left
        fields: list[str] = []
        add: dict[str, int] = {}  # column = column + delta, on the locked row
        if card.kind == Product.Kind.STORED_VALUE:
            amount, balance = _required(redemption.amount), _required(card.balance)
            if amount > balance:
                raise InsufficientBalance()
            release = rules.stored_value_release(
                amount=amount, balance=balance, price=card.price, face_value=_required(card.face_value), escrow=escrow
            )
            add["balance"] = -amount
            card.balance = balance - amount
        elif card.kind == Product.Kind.SESSION_PACK:
            if not card.sessions_remaining:
                raise CardNotRedeemable()
            release = rules.session_release(
                price=card.price,
                sessions=_required(card.sessions),
                sessions_remaining=card.sessions_remaining,
                escrow=escrow,
            )
            add["sessions_remaining"] = -1
            card.sessions_remaining -= 1
        else:  # a pass's check-in releases nothing; the daily accrual does
            release = 0
            if card.valid_from is None:
                _start_pass(card, clock.now())
                fields += ["valid_from", "valid_until"]
        posted = card_release_post(
            card=card,
            amount=release,
            idempotency_key=f"redemption:{redemption.pk}",
            actor_id=consumer.user_id,
            memo=f"redemption {redemption.pk}",
        )
        if not posted:
            fields, add = [], {}  # this release was made before: the card already shows it

        if card.first_service_at is None:
            card.first_service_at = clock.now()
            fields.append("first_service_at")
        if card.state == Card.State.COOLING_OFF:
            card.activate()  # the service was received: the cooling-off period ends now
            fields.append("state")
        redemption.confirm()
        redemption.released = release
        redemption.decided_at = clock.now()
        sql.execute_all(
            [
                # the release's totals and the card's new state (an emptied card is exhausted)
                card_change(card, released=release if posted else 0, fields=fields, add=add).statement(),
                sql.update_statement(redemption, ["state", "released", "decided_at"]),
            ]
        )
        return redemption


def redemption_reject(*, consumer: Consumer, redemption_id: str) -> Redemption:
    """The consumer disputes the service: nothing moves."""
    with service_atomic():
        _, redemption = _lock_redemption(consumer=consumer, redemption_id=redemption_id)
        if redemption.state == Redemption.State.REJECTED:
            return redemption
        if redemption.state != Redemption.State.AWAITING_CONFIRMATION:
            raise RedemptionNotPending()
        # Past its deadline the request is expired, whether or not the expiry job has run yet.
        if clock.now() >= redemption.expires_at:
            raise RedemptionExpired()
        redemption.reject()
        redemption.decided_at = clock.now()
        redemption.save(update_fields=["state", "decided_at"])
        return redemption


# --- the clock's jobs (beat); each safe to run any number of times -----------------------------

CHUNK = 500


def cards_activate_due() -> int:
    """Make active every card whose cooling-off period has ended."""
    done = 0
    while True:
        ids = list(
            Card.objects.filter(state=Card.State.COOLING_OFF, cooling_off_ends_at__lte=clock.now()).values_list(
                "pk", flat=True
            )[:CHUNK]
        )
        if not ids:
            return done
        for card_id in ids:
            with transaction.atomic(durable=True):
                card = card_lock(pk=card_id)
                before = card.state
                card_apply_clock(card)
                done += card.state != before


def redemptions_expire_due() -> int:
    """Mark expired every service request nobody confirmed in time."""
    done = 0
    while True:
        ids = list(
            Redemption.objects.filter(
                state=Redemption.State.AWAITING_CONFIRMATION, expires_at__lte=clock.now()
            ).values_list("pk", flat=True)[:CHUNK]
        )
        if not ids:
            return done
        for redemption_id in ids:
            with transaction.atomic(durable=True):
                redemption = Redemption.objects.select_for_update().get(pk=redemption_id)
                if redemption.state == Redemption.State.AWAITING_CONFIRMATION and clock.now() >= redemption.expires_at:
                    redemption.expire()
                    redemption.decided_at = clock.now()
                    redemption.save(update_fields=["state", "decided_at"])
                    done += 1


def period_pass_accrue(*, day: date | None = None) -> int:
    """Release what each running pass has earned by the start of ``day`` (Beijing; default today).
    Safe to run twice for one day: a pass that has its due releases nothing more."""
    day = day or clock.local_date()
    cutoff = clock.local_midnight(day)
    released = 0
    running = Q(state=Card.State.ACTIVE, valid_from__lt=cutoff)
    # A pass whose cooling-off ended starts then, even if the activation job has not run yet.
    starting = Q(state=Card.State.COOLING_OFF, cooling_off_ends_at__lt=cutoff)
    candidates = (
        Card.objects.filter(running | starting, kind=Product.Kind.PERIOD_PASS, merchant__releases_frozen=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for card_id in candidates.iterator(chunk_size=CHUNK):
        with transaction.atomic(durable=True):
            card = card_lock(pk=card_id)
            card_apply_clock(card)
            if card.state != Card.State.ACTIVE or card.valid_from is None:
                continue
            earned = rules.period_pass_earned(
                price=card.price, days=_required(card.days), valid_from=clock.local_date(card.valid_from), today=day
            )
            due = min(earned - card.released_total, card.escrow_left)
            if due <= 0:
                continue
            # The release exhausts the pass it empties (``card_change``).
            card_release(card=card, amount=due, idempotency_key=f"accrual:{card.pk}:{day.isoformat()}", actor_id=None)
            released += 1
    return released


def cooling_off_ending_notify() -> int:
    """Hourly (beat): tell each consumer whose card's cooling-off period ends within a day that it
    still can be returned in full; each card once. Returns how many were told now."""
    now = clock.now()
    cards = (
        Card.objects.filter(
            state=Card.State.COOLING_OFF,
            cooling_off_ends_at__gt=now,
            cooling_off_ends_at__lte=now + timedelta(days=1),
        )
        .values_list("pk", "price", "cooling_off_ends_at", "merchant_id", "merchant__name", "consumer__user_id")
        .order_by("cooling_off_ends_at")
    )
    told = 0
    for card_id, price, ends_at, merchant_id, merchant_name, user_id in cards.iterator():
        if ends_at is None:  # the filter on it leaves none such; narrows the column's type
            continue
        with transaction.atomic():
            sent = notification_send(
                user_id=user_id,
                kind=Kind.COOLING_OFF_ENDING,
                event_key=f"cooling_off_ending:{card_id}",
                params={"merchant": merchant_name, "price_fen": price, "ends_at": ends_at.isoformat()},
                card_id=card_id,
                merchant_id=merchant_id,
                about_money=False,
            )
        told += sent is not None
    return told


# --- a change of operator: the holder's answer ------------------------------------------------


def operator_consent_give(*, consumer: Consumer, card_id: Any, consent: bool) -> OperatorConsent:
    """The holder answers, for one card, the approved change of its merchant's operator: ``consent``
    true to continue with the new operator, false to be refunded on the change day (as is a card
    left unanswered). Answering again before the day replaces the answer. Refused with 409
    ``operator_consent_not_open`` when no approved change awaits the card's answer (none, its day
    has come, or the card holds no escrow); another consumer's card is not found."""
    with service_atomic():
        card = card_lock(pk=card_id, consumer=consumer)
        card_apply_clock(card)
        change = operator_change_open(merchant=card.merchant)
        if (
            change is None
            or change.state != OperatorChange.State.APPROVED
            or clock.local_date() >= change.changes_on
            or card.state not in Card.HOLDING
            or card.escrow_left <= 0
        ):
            raise OperatorConsentNotOpen()
        answer, _created = OperatorConsent.objects.update_or_create(
            operator_change=change,
            card=card,
            defaults={"consent": consent, "user": consumer.user, "decided_at": clock.now()},
        )
    answer.operator_change = change
    return answer
