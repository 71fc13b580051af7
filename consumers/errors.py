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


class CardInDispute(DomainError):
    code = "card_in_dispute"
    default_detail = _(
        "A dispute about a service on this card is open: the card cannot be refunded or transferred until the "
        "regulator decides it."
    )


class RedemptionNotDisputable(DomainError):
    code = "redemption_not_disputable"
    default_detail = _("Only a service the consumer rejected can be contested.")


class DisputeWindowClosed(DomainError):
    code = "dispute_window_closed"
    default_detail = _("The time to contest this rejected service has passed.")


class DisputeNotOpen(DomainError):
    code = "dispute_not_open"
    default_detail = _("This dispute was already decided.")


class DisputeExpired(DomainError):
    code = "dispute_expired"
    default_detail = _("This dispute was not decided in time and is dismissed: nothing is released.")
