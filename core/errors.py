"""Domain errors: each carries the API's stable error ``code`` and its HTTP status.

Services raise these; the one exception handler (core.exceptions) turns them into
``{"code", "detail"}`` bodies. Apps subclass them in their own ``errors.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from core.rules import Rule


class DomainError(Exception):
    """``rule``: the rules-profile rule a refusal is made under (core.rules.rule()); the error body
    then adds ``rule`` (its key) and ``basis`` (the provision, in the request's language).
    ``reason``: for a code with several causes, a stable snake_case sub-code saying which one
    (added to the body as ``reason``; the ``code`` stays the same)."""

    status_code = 409
    code = "conflict"
    default_detail: Any = _("The request conflicts with the current state.")

    def __init__(
        self,
        detail: Any = None,
        *,
        errors: dict[str, list[str]] | None = None,
        rule: Rule | None = None,
        reason: str | None = None,
    ) -> None:
        self.detail = detail if detail is not None else self.default_detail
        self.errors = errors
        self.rule = rule
        self.reason = reason
        super().__init__(str(self.detail))


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"
    default_detail = _("The request is invalid.")


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    default_detail = _("Not found.")


class InvalidIdempotencyKey(DomainError):
    status_code = 400
    code = "invalid_idempotency_key"
    default_detail = _("The Idempotency-Key header must be 1 to 255 printable ASCII characters.")


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "idempotency_key_reused"
    default_detail = _("This Idempotency-Key was already used with a different request.")


class IdempotentRequestInProgress(DomainError):
    status_code = 409
    code = "idempotency_request_in_progress"
    default_detail = _("A request with this Idempotency-Key is still being processed; retry shortly.")


class InvalidCredentials(DomainError):
    status_code = 400
    code = "invalid_credentials"
    default_detail = _("The username or password is wrong.")


class TooManyLoginAttempts(DomainError):
    status_code = 429
    code = "too_many_login_attempts"
    default_detail = _("Too many failed login attempts: this login is locked for a while. Try again later.")


class OtpRequired(DomainError):
    """A regulator's sign-in without the second factor's code (API.md, Additions v1.1)."""

    status_code = 401
    code = "otp_required"
    default_detail = _(
        "This account signs in with a second factor: send the current 6-digit code of its authenticator."
    )


class OtpInvalid(DomainError):
    status_code = 401
    code = "otp_invalid"
    default_detail = _("The code is wrong or was already used. Wait for the authenticator's next code and try again.")
