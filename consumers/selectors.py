"""Reads for consumers and cards. Ownership lives here: a card that is not yours is "not found"."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet

from consumers.models import Card, Consumer, Redemption
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
