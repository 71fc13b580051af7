from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class CardNotRedeemable(DomainError):
    code = "card_not_redeemable"
    default_detail = _("This card cannot be used for a service in its present state.")


class InsufficientBalance(DomainError):
    code = "insufficient_balance"
    default_detail = _("The amount is more than the card's balance.")


class RedemptionNotPending(DomainError):
    code = "redemption_not_pending"
    default_detail = _("This service request was already decided.")


class RedemptionExpired(DomainError):
    code = "redemption_expired"
    default_detail = _("This service request has expired; ask the merchant to start a new one.")


class PaymentNotPending(DomainError):
    code = "payment_not_pending"
    default_detail = _("This payment was already decided.")


class GatewayUnavailable(DomainError):
    status_code = 503
    code = "gateway_unavailable"
    default_detail = _("The payment gateway could not be reached; retry with the same Idempotency-Key.")


class CardNotTransferable(DomainError):
    """``reason`` says why (``consumers.services_transfers.NOT_TRANSFERABLE``); under the yearly
    limit the body adds its ``rule`` and ``basis`` too."""

    code = "card_not_transferable"
    default_detail = _("This card cannot be transferred now.")


class TransferNotOpen(DomainError):
    code = "card_transfer_not_open"
    default_detail = _("This offer was already accepted, declined, withdrawn, or it has expired.")


class CardNotTopUpable(DomainError):
    """``reason`` says why (``consumers.services_top_ups.NOT_TOP_UPABLE``)."""

    code = "card_not_top_upable"
    default_detail = _("Money cannot be added to this card now.")


class OperatorConsentNotOpen(DomainError):
    code = "operator_consent_not_open"
    default_detail = _(
        "No change of operator awaits this card's answer: none was approved, its day has come, or the card "
        "holds no money."
    )
