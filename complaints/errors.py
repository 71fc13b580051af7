"""Complaints' error codes (API.md, Complaints)."""

from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class ComplaintNotOpen(DomainError):
    status_code = 409
    code = "complaint_not_open"
    default_detail = _("The complaint is no longer waiting for this.")


class UnknownMerchant(DomainError):
    status_code = 400
    code = "unknown_merchant"
    default_detail = _("No merchant has this id.")


class ComplaintCardMismatch(DomainError):
    status_code = 400
    code = "complaint_card_mismatch"
    default_detail = _("The card is not a card of this merchant held by the complainant.")


class ComplaintSourceNotAllowed(DomainError):
    status_code = 400
    code = "complaint_source_not_allowed"
    default_detail = _('Consumers file complaints from the app (source "app"); regulator staff enter hotline calls.')


class DuplicateHotlineReference(DomainError):
    status_code = 400
    code = "duplicate_hotline_reference"
    default_detail = _("A complaint with this hotline work order number already exists.")


class ComplaintImportFailed(DomainError):
    """The whole file is unusable (unreadable, not UTF-8, wrong header); nothing was imported."""

    status_code = 400
    code = "complaint_import_failed"
    default_detail = _("The complaints file cannot be imported.")
