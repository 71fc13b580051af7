from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class CoolingOffExpired(DomainError):
    code = "cooling_off_expired"
    default_detail = _("The cooling-off period is over, or a service was already received.")


class BalanceNotSmall(DomainError):
    code = "balance_not_small"
    default_detail = _("The balance is enough for a single use, or the card is not a stored-value card.")


class CardNotRefundable(DomainError):
    code = "card_not_refundable"
    default_detail = _("This card cannot be refunded for this reason in its present state.")


class MerchantNotInDefault(DomainError):
    code = "merchant_not_in_default"
    default_detail = _(
        "The merchant is in good standing: it has not given notice of closing or moving, is neither flagged nor"
        " frozen, its operator has not changed without your consent, and no complaint about this card was upheld."
    )


class RefundNotFailed(DomainError):
    code = "refund_not_failed"
    default_detail = _("Only a failed refund can be sent again.")
