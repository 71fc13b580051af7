"""Reads for consumers and cards. Ownership lives here: a card that is not yours is "not found"."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q, QuerySet, Sum

from consumers.errors import CardNotRedeemable
from consumers.models import (
    COUNTER_CODE_ALPHABET,
    COUNTER_CODE_LENGTH,
    Card,
    Consumer,
    OperatorConsent,
    Redemption,
)
from core import clock
from core.errors import NotFound
from merchants.models import OperatorChange
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
