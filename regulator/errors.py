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


class ReportNotReady(DomainError):
    """A periodic report's file was asked for before the report is done (or after it failed)."""

    status_code = 409
    code = "report_not_ready"
    default_detail = _("The report is not ready yet: its files are written when it is done.")
