"""Reads for consumers and cards. Ownership lives here: a card that is not yours is "not found"."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q, QuerySet, Sum

from consumers.models import Card, Consumer, Redemption
from core import clock
from core.errors import NotFound


def consumer_of_user(*, user) -> Consumer:
    """The user's consumer profile (already loaded with the user by token authentication)."""
    try:
        return user.consumer
    except Consumer.DoesNotExist as exc:
        raise NotFound() from exc


def cards_visible_to(*, user) -> QuerySet[Card]:
    """A consumer's own cards, a merchant's sold cards, every card for a regulator."""
    cards = Card.objects.select_related("escrow_account", "payment").order_by("-created_at", "pk")
    if user.role == "regulator":
        return cards
    if user.role == "merchant":
        return cards.filter(merchant__user=user)
    return cards.filter(consumer__user=user)


def card_get(*, user, card_id: str) -> Card:
    try:
        return cards_visible_to(user=user).select_related("merchant", "consumer", "product").get(pk=card_id)
    except (Card.DoesNotExist, ValueError, DjangoValidationError) as exc:  # malformed ids are absent too
        raise NotFound() from exc


def redemptions_visible_to(*, user) -> QuerySet[Redemption]:
    redemptions = Redemption.objects.order_by("-created_at", "pk")
    if user.role == "regulator":
        return redemptions
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
