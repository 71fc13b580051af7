from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class InsufficientFunds(DomainError):
    status_code = 409
    code = "insufficient_funds"
    default_detail = _("The account does not hold enough money for this movement.")


class UnknownAccount(DomainError):
    status_code = 404
    code = "account_not_found"
    default_detail = _("No such ledger account.")


class UnbalancedEntry(DomainError):
    """A service tried to post postings that do not balance: a bug, refused before any write."""

    status_code = 500
    code = "unbalanced_entry"
    default_detail = _("The journal entry does not balance.")
