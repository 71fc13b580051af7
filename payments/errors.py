"""Payments' error codes: a webhook that does not verify, a gateway that cannot be reached."""

from django.utils.translation import gettext_lazy as _

from core.errors import DomainError


class InvalidSignature(DomainError):
    """A webhook whose ``Stripe-Signature`` does not verify, is too old, or is not a Stripe event."""

    status_code = 400
    code = "invalid_signature"
    default_detail = _("The Stripe-Signature header does not verify this payload.")


class StripeUnreachable(DomainError):
    """Handling the event needed a call to Stripe that failed: Stripe delivers the event again."""

    status_code = 503
    code = "gateway_unavailable"
    default_detail = _("Stripe could not be reached to complete this event; it will be delivered again.")
