"""Reads for consumers and cards. Ownership lives here: a card that is not yours is "not found"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum, Value
from django.db.models.functions import Replace

from consumers import rules
from consumers.errors import CardNotRedeemable
from consumers.models import (
    COUNTER_CODE_ALPHABET,
    COUNTER_CODE_LENGTH,
    Card,
    CardTransfer,
    Consumer,
    Dispute,
    DisputeEvidence,
    OperatorConsent,
    Redemption,
    TopUp,
    phone_normalize,
)
from core import clock
from core.errors import NotFound
from merchants.models import Merchant, OperatorChange, Product
from merchants.oversight import oversight_of


def consumer_of_user(*, user) -> Consumer:
    """The user's consumer profile (already loaded with the user by token authentication)."""
    try:
        return user.consumer
    except Consumer.DoesNotExist as exc:
        raise NotFound() from exc


def cards_visible_to(*, user) -> QuerySet[Card]:
    """A consumer's own cards, a merchant's sold cards, a regulator's the cards of its jurisdiction."""
    cards = Card.objects.select_related("escrow_account", "payment").order_by("-created_at", "pk")
    if user.role == "regulator":
        return oversight_of(user).narrow(cards, path="merchant__")
    if user.role == "merchant":
        return cards.filter(merchant__user=user)
    return cards.filter(consumer__user=user)


def card_get(*, user, card_id: str) -> Card:
    try:
        return cards_visible_to(user=user).select_related("merchant", "consumer", "product").get(pk=card_id)
    except (Card.DoesNotExist, ValueError, DjangoValidationError) as exc:  # malformed ids are absent too
        raise NotFound() from exc


# A card id is a UUID; the contract's QR code carries it, alone or inside longer text.
CARD_ID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)
# What people put between the groups of a counter code, typing it or reading it out.
_CODE_SEPARATORS = re.compile(r"[\s\-_.·]+")


def counter_code_normalize(text: str) -> str | None:
    """The counter code in ``text`` (as typed, any case, grouped or not, or the card page's QR
    text: a link whose ``code`` parameter holds it), or None when there is none."""
    text = text.strip()
    if "code=" in text:
        found = parse_qs(urlsplit(text).query).get("code")
        if not found:
            return None
        text = found[0]
    code = _CODE_SEPARATORS.sub("", text).upper()
    if len(code) == COUNTER_CODE_LENGTH and all(symbol in COUNTER_CODE_ALPHABET for symbol in code):
        return code
    return None


def card_for_counter(*, merchant, code_or_id: str) -> Card:
    """The merchant's own card that a holder shows at the counter, by its counter code (typed, or
    scanned from the card page's QR code) or by its id (typed, or inside the contract's QR text),
    ready for a service: with its product and holder.

    Another merchant's card, or text naming no card, is "not found" alike. A card of the merchant's
    that cannot take a service now (not paid, frozen, used up, refunded) raises ``CardNotRedeemable``,
    the API's own refusal, so the merchant learns it before asking the holder to confirm.
    """
    cards = Card.objects.select_related("product", "consumer", "escrow_account").filter(merchant=merchant)
    found_id = CARD_ID.search(code_or_id)
    if found_id is not None:
        lookup = {"pk": found_id.group(0).replace("-", "").lower()}
    else:
        code = counter_code_normalize(code_or_id)
        if code is None:
            raise NotFound()
        lookup = {"counter_code": code}
    card = cards.filter(**lookup).first()
    if card is None:
        raise NotFound()
    if card.state not in Card.REDEEMABLE:
        raise CardNotRedeemable()
    return card


def phone_tail(phone: str) -> str:
    """What a merchant sees of a holder's phone at the counter: its last four digits."""
    return "****" + phone[-4:] if len(phone) > 4 else "****"


def redemptions_visible_to(*, user) -> QuerySet[Redemption]:
    redemptions = Redemption.objects.order_by("-created_at", "pk")
    if user.role == "regulator":
        return oversight_of(user).narrow(redemptions, path="merchant__")
    if user.role == "merchant":
        return redemptions.filter(merchant__user=user)
    return redemptions.filter(card__consumer__user=user)


def redemptions_awaiting_answer(*, user) -> QuerySet[Redemption]:
    """Services the merchant started that wait for the consumer's answer and can still be confirmed."""
    return redemptions_visible_to(user=user).filter(
        state=Redemption.State.AWAITING_CONFIRMATION, expires_at__gt=clock.now()
    )


def merchant_escrow_outstanding(*, merchant_id) -> int:
    """Fen the merchant's customers' cards still hold in escrow (registered in ``ConsumersConfig.ready``
    as the merchant balance's ``escrow_outstanding``, ``merchants.handlers``)."""
    total = Card.objects.filter(merchant_id=merchant_id).aggregate(total=Sum("escrow_account__balance"))["total"]
    return total or 0


def merchant_card_figures(*, merchant_id) -> tuple[int, int]:
    """Fen ever paid for the merchant's cards, and how many of them still hold escrow (not fully
    redeemed): what the filing triggers measure (registered in ``ConsumersConfig.ready``)."""
    totals = Card.objects.filter(merchant_id=merchant_id).aggregate(
        collected=Sum("price", filter=Q(paid_at__isnull=False)),
        unredeemed=Count("pk", filter=Q(state__in=Card.HOLDING)),
    )
    return totals["collected"] or 0, totals["unredeemed"] or 0


# --- audiences of notifications (registered in ConsumersConfig.ready) ---------------------------

# A card in these states still holds the consumer's money in escrow.
HOLDING_ESCROW = Card.HOLDING


def _holders(merchant_id: str) -> QuerySet[Consumer]:
    return Consumer.objects.filter(cards__merchant_id=merchant_id, cards__state__in=HOLDING_ESCROW)


def card_holders_after(merchant_id: str, after: int, limit: int) -> list[int]:
    """Up to ``limit`` user ids (ascending, greater than ``after``) of consumers whose card at the
    merchant still holds escrow: the audience ``card_holders`` of notifications' fan-outs."""
    return list(
        _holders(merchant_id)
        .filter(user_id__gt=after)
        .values_list("user_id", flat=True)
        .distinct()
        .order_by("user_id")[:limit]
    )


def card_holders_count(merchant_id: str) -> int:
    return _holders(merchant_id).values("user_id").distinct().count()


# --- transfers and top-ups -----------------------------------------------------------------------


def consumers_with_phone(*, phone: str) -> QuerySet[Consumer]:
    """Consumers signed up with this phone number, however they typed it (spaces, dashes, +86)."""
    normalized = phone_normalize(phone)
    variants = [normalized] if normalized.startswith("+") else [normalized, f"+86{normalized}", f"0086{normalized}"]
    typed = Replace(Replace(F("phone"), Value(" "), Value("")), Value("-"), Value(""))
    return Consumer.objects.annotate(phone_typed=typed).filter(phone_typed__in=variants)


def transfers_visible_to(*, user) -> QuerySet[CardTransfer]:
    """A consumer's offers made and received (by their phone, answered or not), a merchant's
    offers of the cards it sold, a regulator's the offers of cards of its jurisdiction; newest first."""
    transfers = CardTransfer.objects.select_related(
        "card__merchant", "card__product", "card__escrow_account", "from_consumer"
    ).order_by("-created_at", "pk")
    if user.role == "regulator":
        return oversight_of(user).narrow(transfers, path="card__merchant__")
    if user.role == "merchant":
        return transfers.filter(card__merchant__user=user)
    consumer = getattr(user, "consumer", None)
    if consumer is None:
        return transfers.none()
    return transfers.filter(
        Q(from_consumer=consumer) | Q(to_phone=phone_normalize(consumer.phone)) | Q(to_consumer=consumer)
    )


def transfer_get(*, user, transfer_id) -> CardTransfer:
    try:
        return transfers_visible_to(user=user).get(pk=transfer_id)
    except (CardTransfer.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc


def transfers_offered_to(*, consumer: Consumer) -> QuerySet[CardTransfer]:
    """Offers waiting for this consumer's answer (made to their phone, still open by the clock)."""
    return (
        CardTransfer.objects.select_related("card__merchant", "card__product", "card__escrow_account", "from_consumer")
        .filter(to_phone=phone_normalize(consumer.phone), state=CardTransfer.State.OFFERED, expires_at__gt=clock.now())
        .exclude(from_consumer=consumer)
        .order_by("expires_at", "pk")
    )


def transfers_given_by(*, consumer: Consumer) -> QuerySet[CardTransfer]:
    """Cards this consumer gave away (accepted offers): their contract as it stood stays theirs."""
    return (
        transfers_visible_to(user=consumer.user)
        .select_related("to_consumer")
        .filter(from_consumer=consumer, state=CardTransfer.State.ACCEPTED)
    )


def card_transfers(*, card: Card, consumer: Consumer) -> QuerySet[CardTransfer]:
    """A card's transfers as its holder sees them: how it came to them (each accepted transfer) and
    their own offers of it; another holder's unanswered offers to third parties stay theirs."""
    return (
        CardTransfer.objects.select_related("from_consumer", "to_consumer")
        .filter(card=card)
        .filter(Q(state=CardTransfer.State.ACCEPTED) | Q(from_consumer=consumer))
        .order_by("-created_at", "pk")
    )


def card_open_offer(*, card: Card) -> CardTransfer | None:
    """The card's offer still waiting for an answer, if any (open by the clock)."""
    return (
        CardTransfer.objects.filter(card=card, state=CardTransfer.State.OFFERED, expires_at__gt=clock.now())
        .order_by("pk")
        .first()
    )


def card_holder_since(*, card: Card):
    """When the card came to its present holder: its last accepted transfer, else None (bought)."""
    return (
        CardTransfer.objects.filter(card=card, state=CardTransfer.State.ACCEPTED, to_consumer_id=card.consumer_id)
        .order_by("-decided_at")
        .first()
    )


def top_ups_visible_to(*, user) -> QuerySet[TopUp]:
    """Top-ups of the cards the user sees (``cards_visible_to``), newest first."""
    return (
        TopUp.objects.filter(card__in=cards_visible_to(user=user).values("pk"))
        .select_related("card")
        .order_by("-created_at", "pk")
    )


def top_up_get(*, user, top_up_id) -> TopUp:
    try:
        return (
            top_ups_visible_to(user=user)
            .select_related("card__merchant", "card__product", "consumer")
            .get(pk=top_up_id)
        )
    except (TopUp.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc


def transfer_given_get(*, consumer: Consumer, transfer_id) -> CardTransfer:
    """One of the consumer's accepted offers (a card they gave away), with its card; else "not found"."""
    try:
        return (
            CardTransfer.objects.select_related("card__merchant", "card__product", "card__escrow_account")
            .filter(from_consumer=consumer, state=CardTransfer.State.ACCEPTED)
            .get(pk=transfer_id)
        )
    except (CardTransfer.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc


# --- a change of operator: which cards continue -------------------------------------------------


def operator_change_cards_refunded(*, change: OperatorChange) -> QuerySet[Card]:
    """The cards a change of operator refunds on its day: its merchant's cards paid before that day
    (00:00 Beijing) that still hold escrow and whose holder did not consent to continue. A card
    bought from the day on was bought from the new operator; one whose holder said yes continues."""
    consenting = OperatorConsent.objects.filter(operator_change=change, consent=True).values("card_id")
    return Card.objects.filter(
        merchant_id=change.merchant_id,
        state__in=Card.HOLDING,
        paid_at__lt=clock.local_midnight(change.changes_on),
    ).exclude(pk__in=consenting)


def card_operator_consent(*, card: Card, change: OperatorChange) -> OperatorConsent | None:
    """The holder's answer for ``card`` to ``change``, if one was given."""
    return OperatorConsent.objects.filter(operator_change=change, card=card).first()


# --- disputes ---------------------------------------------------------------------------------


def card_has_open_dispute(card: Card) -> bool:
    """Whether a dispute about a service on the card is open (by the clock: one past its
    ``decide_by`` is dismissed), which stops the card's refunds and transfers (``card_in_dispute``).
    Read under the card's lock, it cannot change until the commit: opening a dispute locks the card."""
    return Dispute.objects.filter(card_id=card.pk, state=Dispute.State.OPEN, decide_by__gt=clock.now()).exists()


def card_open_disputes(*, card_ids) -> set:
    """The ids, among ``card_ids``, of cards with an open dispute (one query, for a page of cards)."""
    return set(
        Dispute.objects.filter(card_id__in=list(card_ids), state=Dispute.State.OPEN, decide_by__gt=clock.now())
        .values_list("card_id", flat=True)
        .distinct()
    )


def _with_evidence(disputes: QuerySet[Dispute]) -> QuerySet[Dispute]:
    """Disputes with what a page or a response shows of them: the redemption, card, parties and evidence."""
    return disputes.select_related("redemption", "card__product", "merchant", "consumer").prefetch_related(
        Prefetch("evidence", queryset=DisputeEvidence.objects.order_by("created_at", "pk"))
    )


def _disputes() -> QuerySet[Dispute]:
    return _with_evidence(Dispute.objects.order_by("-created_at", "pk"))


def disputes_visible_to(*, user) -> QuerySet[Dispute]:
    """A merchant's disputes, or the disputes about a consumer's services (the regulator reads
    ``disputes_among``, scoped to its jurisdiction); anyone else sees none."""
    if user.role == "merchant":
        return _disputes().filter(merchant__user=user)
    if user.role == "consumer":
        return _disputes().filter(consumer__user=user)
    return Dispute.objects.none()


def disputes_among(*, merchants: QuerySet[Merchant], state: str | None = None) -> QuerySet[Dispute]:
    """The disputes of ``merchants`` (a regulator's jurisdiction), open ones first by their
    deadline, then the decided, newest first; ``state`` narrows them."""
    disputes = _with_evidence(Dispute.objects.filter(merchant__in=merchants))
    if state:
        disputes = disputes.filter(state=state)
    return disputes.order_by(F("decided_at").desc(nulls_first=True), "decide_by", "pk")


def dispute_get(*, user, dispute_id) -> Dispute:
    """One of the user's disputes (``disputes_visible_to``); anyone else's is "not found"."""
    try:
        return disputes_visible_to(user=user).get(pk=dispute_id)
    except (Dispute.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc


def dispute_among(*, merchants: QuerySet[Merchant], dispute_id) -> Dispute:
    """A dispute of one of ``merchants`` (the regulator's); any other is "not found"."""
    try:
        return disputes_among(merchants=merchants).get(pk=dispute_id)
    except (Dispute.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc


def dispute_evidence(*, dispute: Dispute) -> list[DisputeEvidence]:
    """The parties' evidence, oldest first (as prefetched by the selectors above, else read now)."""
    if "evidence" in getattr(dispute, "_prefetched_objects_cache", {}):
        return list(dispute.evidence.all())
    return list(dispute.evidence.order_by("created_at", "pk"))


def dispute_evidence_get(*, user, evidence_id, merchants: QuerySet[Merchant] | None = None) -> DisputeEvidence:
    """A file of evidence for one of the dispute's parties or, given its jurisdiction's
    ``merchants``, a regulator; anyone else is told it does not exist."""
    try:
        evidence = DisputeEvidence.objects.select_related("dispute").get(pk=evidence_id)
    except (DisputeEvidence.DoesNotExist, ValueError, DjangoValidationError) as exc:
        raise NotFound() from exc
    if not evidence.file:
        raise NotFound()
    if merchants is not None:
        if merchants.filter(pk=evidence.dispute.merchant_id).exists():
            return evidence
        raise NotFound()
    if disputes_visible_to(user=user).filter(pk=evidence.dispute_id).exists():
        return evidence
    raise NotFound()


def redemption_contestable_until(redemption: Redemption) -> datetime | None:
    """Until when the merchant may contest a rejected redemption, or None if it cannot be contested:
    not rejected, a pass's check-in (it releases nothing), its card holds nothing any more, or the
    window has closed. (The card's state is as last written; ``dispute_open`` checks it locked.)"""
    if redemption.state != Redemption.State.REJECTED or redemption.decided_at is None:
        return None
    if redemption.card.kind == Product.Kind.PERIOD_PASS or redemption.card.state not in Card.HOLDING:
        return None
    until = rules.dispute_window_ends_at(redemption.decided_at)
    return until if clock.now() < until else None


@dataclass(frozen=True)
class Contestable:
    redemption: Redemption
    until: datetime  # the end of the time to contest it


def redemptions_contestable(*, merchant: Merchant) -> list[Contestable]:
    """The merchant's rejected services it may still contest and has not, the newest first."""
    window = rules.dispute_window_ends_at(clock.now()) - clock.now()
    candidates = (
        Redemption.objects.filter(
            merchant=merchant,
            state=Redemption.State.REJECTED,
            decided_at__gt=clock.now() - window,
            dispute__isnull=True,
            card__state__in=Card.HOLDING,
        )
        .exclude(card__kind=Product.Kind.PERIOD_PASS)
        .select_related("card__product")
        .order_by("-decided_at", "pk")
    )
    found = []
    for redemption in candidates:
        until = redemption_contestable_until(redemption)
        if until is not None:
            found.append(Contestable(redemption=redemption, until=until))
    return found
