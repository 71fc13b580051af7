"""What the commands that set a regulator's authenticator share (``createregulator``, ``totp_reset``)."""

import os

from django.core.management.base import CommandError

from core.errors import DomainError
from core.services import totp_secret_parse


def domain_error_text(exc: DomainError) -> str:
    """A domain error as one line: its field errors, or its detail."""
    reasons = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in (exc.errors or {}).items())
    return reasons or str(exc.detail)


def totp_secret_of_env(variable: str | None) -> str | None:
    """The TOTP secret (base32) in the environment variable ``--totp-secret-from-env`` names,
    checked; ``None`` without the option (a secret is then generated)."""
    if not variable:
        return None
    secret = os.environ.get(variable)
    if not secret:
        raise CommandError(f"environment variable {variable} is not set or empty")
    try:
        totp_secret_parse(secret)
    except DomainError as exc:
        raise CommandError(f"{variable}: {domain_error_text(exc)}") from exc
    return secret


def print_generated_uri(stdout, uri: str) -> None:
    stdout.write("Its authenticator (shown this once; it holds the secret): scan or paste into the regulator's app:")
    stdout.write(f"  {uri}")
