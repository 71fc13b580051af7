from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class InvalidLicenseNumber(DomainError):
    status_code = 400
    code = "invalid_license_number"
    default_detail = _("The licence number is not a valid 18-character unified social credit code.")


class CardLimitExceeded(DomainError):
    status_code = 400
    code = "card_limit_exceeded"
    default_detail = _("The card breaks a legal limit.")


class MerchantSalesFrozen(DomainError):
    status_code = 409
    code = "merchant_sales_frozen"
    default_detail = _("This merchant may not sell cards at present.")


class MerchantFrozen(DomainError):
    status_code = 409
    code = "merchant_frozen"
    default_detail = _("The regulator has frozen this merchant's releases.")


class FilingNotRequired(DomainError):
    status_code = 409
    code = "filing_not_required"
    default_detail = _("No filing is required of this merchant.")


class FilingNotSubmitted(DomainError):
    status_code = 409
    code = "filing_not_submitted"
    default_detail = _("Only a submitted filing can be accepted or returned.")


class NoticeTooShort(DomainError):
    """A closure, a move or a change of operator named a day sooner than the rules profile's notice
    allows (the error names the rule and its basis)."""

    status_code = 400
    code = "notice_too_short"
    default_detail = _("The notice is shorter than the rules allow.")


class MerchantNotActive(DomainError):
    code = "merchant_not_active"
    default_detail = _("This merchant has given notice of closing, or is closed.")


class RelocationPending(DomainError):
    code = "relocation_pending"
    default_detail = _("This merchant has already given notice of a move; withdraw it before giving another.")


class RelocationNotPending(DomainError):
    code = "relocation_not_pending"
    default_detail = _("There is no notice of a move still to come.")


class OperatorChangePending(DomainError):
    code = "operator_change_pending"
    default_detail = _("A change of operator of this merchant is already awaiting the regulator or its day.")


class OperatorChangeNotRequested(DomainError):
    code = "operator_change_not_requested"
    default_detail = _("Only a change of operator awaiting the regulator can be approved or rejected.")


class OperatorChangeTooLate(DomainError):
    code = "operator_change_too_late"
    default_detail = _("The day of this change of operator has come: holders would have no time to answer.")
