"""What each kind of notification says, in the person's language.

``render(kind=..., params=..., language=...)`` returns ``(title, body)``. Params are plain JSON
values written by the caller, formatted here for people: a key ending in ``_fen`` is money (written
in yuan), ``_at`` an ISO 8601 instant (written in Beijing time), ``_on`` an ISO date. Texts never
show internal keys or ids; a link (``url``) is a path of the site.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from core.formatting import beijing_date, beijing_datetime, yuan
from notifications.models import Kind


def _moment(value: str) -> str:
    moment = datetime.fromisoformat(value)
    if translation.get_language() == "en":
        return f"{beijing_datetime(moment, language='en')} (Beijing time)"
    return f"{beijing_datetime(moment, language='zh-hans')}（北京时间）"


def _day(value: str) -> str:
    return beijing_date(date.fromisoformat(value))


def _formatted(params: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        if key.endswith("_fen"):
            out[key[: -len("_fen")]] = yuan(int(value))
        elif key.endswith("_at"):
            out[key] = _moment(value)
        elif key.endswith("_on"):
            out[key] = _day(value)
        else:
            out[key] = str(value)
    return out


def _texts(kind: str, p: dict[str, str]) -> tuple[str, str]:
    if kind == Kind.SERVICE_REQUESTED:
        title = _("%(merchant)s asks you to confirm a service") % p
        if "amount" in p:
            body = (
                _(
                    "%(merchant)s has started a service of %(amount)s on your card. Confirm it only if you "
                    "received it: confirming pays its share of your money to the merchant. Confirm or reject "
                    "it before %(expires_at)s: %(url)s"
                )
                % p
            )
        else:
            body = (
                _(
                    "%(merchant)s has started a service on your card. Confirm it only if you received it: "
                    "confirming pays its share of your money to the merchant. Confirm or reject it before "
                    "%(expires_at)s: %(url)s"
                )
                % p
            )
        return title, body
    if kind == Kind.COOLING_OFF_ENDING:
        return _("Your cooling-off period ends soon"), _(
            "Your card from %(merchant)s can still be returned for a full refund of %(price)s until "
            "%(ends_at)s, if you have had no service. After that, refunds follow the contract's terms."
        ) % p
    if kind == Kind.REFUND_PAID:
        return _("Your refund has been paid"), _(
            "%(amount)s from your card at %(merchant)s has been paid back to you."
        ) % p
    if kind == Kind.REFUND_LATE:
        return _("Your refund is late"), _(
            "Your refund of %(amount)s from your card at %(merchant)s was due by %(due_by_at)s and has not "
            "been paid yet. The platform keeps trying and the market regulator has been told."
        ) % p
    if kind == Kind.MERCHANT_FLAGGED:
        return _("The regulator has flagged %(merchant)s") % p, _(
            "The market regulator has flagged %(merchant)s, where your card still holds money. That money "
            "is safe in escrow, and you may ask for a full refund of what is left, with no fee."
        ) % p
    if kind == Kind.MERCHANT_FROZEN:
        return _("The regulator has frozen %(merchant)s") % p, _(
            "The market regulator has frozen %(merchant)s: the money left on your card stays in escrow "
            "and is not paid to the merchant. You may ask for a full refund of what is left, with no fee."
        ) % p
    if kind == Kind.MERCHANT_CLOSING:
        return _("%(merchant)s is closing") % p, _(
            "%(merchant)s will close on %(closes_on)s. Your card's money is held in escrow: on that day "
            "everything left on it is refunded to you in full, with no fee. You can still use it until then."
        ) % p
    if kind == Kind.MERCHANT_RELOCATING:
        return _("%(merchant)s is moving") % p, _(
            "%(merchant)s will move to %(address)s on %(moves_on)s. If that no longer suits you, you may "
            "ask for a full refund of what is left on your card, with no fee, until %(refund_until_on)s."
        ) % p
    if kind == Kind.MERCHANT_OPERATOR_CHANGING:
        return _("%(merchant)s is changing hands") % p, _(
            "The regulator has approved %(operator)s taking over %(merchant)s on %(changes_on)s. Tell us on "
            "your card's page before then whether you continue with the new operator. If you do not say yes, "
            "everything left on your card is refunded to you in full, with no fee, on that day."
        ) % p
    if kind == Kind.CARD_TRANSFER_OFFERED:
        return _("A card is offered to you"), _(
            "%(sender)s offers you their card from %(merchant)s. Accept or decline it in the app before %(expires_at)s."
        ) % p
    if kind == Kind.CARD_TRANSFER_ACCEPTED:
        return _("Your card now belongs to %(recipient)s") % p, _(
            "%(recipient)s accepted your card from %(merchant)s on %(accepted_at)s. It is theirs now, with "
            "everything left on it; nothing was charged and no money moved."
        ) % p
    if kind == Kind.CARD_TRANSFER_RECEIVED:
        return _("The card from %(merchant)s is yours") % p, _(
            "You accepted the card %(sender)s gave you. Its money stays in escrow as before, and its contract "
            "has been reissued in your name: %(url)s"
        ) % p
    if kind == Kind.CARD_TRANSFER_DECLINED:
        return _("Your card offer was declined"), _(
            "The person you offered your card from %(merchant)s to declined it. The card is still yours."
        ) % p
    if kind == Kind.CARD_TRANSFER_CANCELLED:
        return _("A card offer was withdrawn"), _("%(sender)s withdrew the offer of their card from %(merchant)s.") % p
    if kind == Kind.CARD_TRANSFER_EXPIRED:
        return _("Your card offer has expired"), _(
            "Nobody accepted your card from %(merchant)s before %(expires_at)s. The card is still yours; "
            "you may offer it again."
        ) % p
    if kind == Kind.CARD_TRANSFERRED:
        return _("A card of yours has a new holder"), _(
            "A customer's card of %(product)s (counter code %(code)s) was transferred to %(recipient)s on "
            "%(accepted_at)s. Serve the new holder from now on; the money left on it is unchanged."
        ) % p
    if kind == Kind.COMPLAINT_DUE:
        return _("A complaint must be answered by %(respond_by_at)s") % p, _(
            "A consumer's complaint about your shop must be answered by %(respond_by_at)s. A complaint "
            "left unanswered becomes overdue, and the regulator sees it."
        ) % p
    if kind == Kind.DOCUMENTS_REQUESTED:
        return _("The regulator asks you for documents"), _(
            "The market regulator, inspecting your shop, asks you for documents: %(request)s. Send them "
            "(PDF, JPEG or PNG) on this page: %(url)s"
        ) % p
    if kind == Kind.DISPUTE_OPENED:
        return _("%(merchant)s contests a service you rejected") % p, _(
            "%(merchant)s says the service you rejected on your card was given, and has asked the market "
            "regulator to decide. Add your side (what happened, photos, documents) before %(decide_by_at)s: "
            "%(url)s. Until it is decided, the card can be neither refunded nor transferred."
        ) % p
    if kind == Kind.DISPUTE_DECIDED:
        return _dispute_decided(p)
    raise ValueError(f"unknown notification kind {kind!r}")


def _dispute_decided(p: dict[str, str]) -> tuple[str, str]:
    """A dispute ended: for its consumer or its merchant (``party``), upheld or dismissed (``outcome``),
    and why it was dismissed (``ended_by``: the regulator, the deadline, the platform's refund)."""
    if p["outcome"] == "upheld":
        if p["party"] == "merchant":
            return _("Your dispute was upheld"), _(
                "The market regulator found that the service your consumer rejected was given: %(amount)s "
                "of the card's escrow has been released to you."
            ) % p
        return _("The regulator upheld %(merchant)s's dispute") % p, _(
            "The market regulator found that the service you rejected at %(merchant)s was given: %(amount)s "
            "of your card's escrow has been released to the merchant. Your card can be refunded and "
            "transferred again: %(url)s"
        ) % p
    why = {
        "timeout": _("it was not decided in time"),
        "refund": _("the platform refunded the card in full"),
    }.get(p.get("ended_by", ""), _("the market regulator dismissed it"))
    if p["party"] == "merchant":
        return _("Your dispute was dismissed"), _(
            "Your dispute about a service your consumer rejected has ended (%(why)s): nothing was released."
        ) % {**p, "why": why}
    if p.get("ended_by") == "refund":
        return _("The dispute with %(merchant)s has ended") % p, _(
            "%(merchant)s's dispute about a service you rejected has ended: the platform refunds everything "
            "left on your card to you, and nothing was released to the merchant."
        ) % p
    return _("The dispute with %(merchant)s has ended") % p, _(
        "%(merchant)s's dispute about a service you rejected has ended (%(why)s): nothing was released from "
        "your card, and it can be refunded and transferred again: %(url)s"
    ) % {**p, "why": why}


def render(*, kind: str, params: dict[str, Any], language: str) -> tuple[str, str]:
    """``(title, body)`` of a notification of ``kind`` in ``language``; a missing param raises KeyError."""
    with translation.override(language):
        title, body = _texts(kind, _formatted(params))
    return title[:200], body
