from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class ActionNotAllowed(DomainError):
    status_code = 409
    code = "action_not_allowed"
    default_detail = _("The action does not apply to this merchant in its present state.")


class RateLimited(DomainError):
    """A client address asked the public record more than ``PUBLIC_RATE_LIMIT`` times this minute."""

    status_code = 429
    code = "rate_limited"
    default_detail = _("Too many requests from this address. Try again in a minute.")


# --- inspection cases ------------------------------------------------------------------------------


class CaseClosed(DomainError):
    status_code = 409
    code = "case_closed"
    default_detail = _("The inspection case is closed: nothing more can be added to it.")


class DocumentRequestNotOpen(DomainError):
    status_code = 409
    code = "document_request_not_open"
    default_detail = _("This request for documents is already answered or withdrawn.")


class CaseFileTypeNotAllowed(DomainError):
    status_code = 400
    code = "case_file_type_not_allowed"
    default_detail = _("Only PDF, JPEG or PNG files are accepted (the file's content is checked, not its name).")


class CaseFileTooLarge(DomainError):
    status_code = 400
    code = "case_file_too_large"
    default_detail = _("A file is larger than the limit.")


class AssigneeNotAllowed(DomainError):
    status_code = 400
    code = "assignee_not_allowed"
    default_detail = _("Assign the case to a regulator whose jurisdiction covers the merchant.")


class MeasureNotOfMerchant(DomainError):
    status_code = 400
    code = "measure_not_of_merchant"
    default_detail = _("Only an action taken against the case's merchant can be linked as a measure.")


class ReportNotReady(DomainError):
    """A periodic report's file was asked for before the report is done (or after it failed)."""

    status_code = 409
    code = "report_not_ready"
    default_detail = _("The report is not ready yet: its files are written when it is done.")
