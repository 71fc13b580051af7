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
