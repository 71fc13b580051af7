from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class ComplaintNotOpen(DomainError):
    status_code = 409
    code = "complaint_not_open"
    default_detail = _("The complaint is no longer waiting for this.")


class ActionNotAllowed(DomainError):
    status_code = 409
    code = "action_not_allowed"
    default_detail = _("The action does not apply to this merchant in its present state.")
