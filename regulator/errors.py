from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class ActionNotAllowed(DomainError):
    status_code = 409
    code = "action_not_allowed"
    default_detail = _("The action does not apply to this merchant in its present state.")
