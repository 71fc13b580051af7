import getpass
import os

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.errors import DomainError
from core.models import User
from core.services import totp_secret_parse, user_create, user_totp_set


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


def domain_error_text(exc: DomainError) -> str:
    reasons = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in (exc.errors or {}).items())
    return reasons or str(exc.detail)


def print_generated_uri(stdout, uri: str) -> None:
    stdout.write("Its authenticator (shown this once; it holds the secret): scan or paste into the regulator's app:")
    stdout.write(f"  {uri}")


class Command(BaseCommand):
    help = (
        "Create a regulator user: the password is prompted for (or --password-from-env VAR); the TOTP "
        "authenticator's secret is read from --totp-secret-from-env VAR (base32), or generated and its "
        "otpauth:// URI printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password-from-env", metavar="VAR", help="read the password from this variable")
        parser.add_argument(
            "--totp-secret-from-env",
            metavar="VAR",
            help="read the authenticator's secret (base32) from this variable; without it a secret is generated",
        )

    def handle(self, *args, username, password_from_env, totp_secret_from_env, **options):
        secret = totp_secret_of_env(totp_secret_from_env)
        if password_from_env:
            password = os.environ.get(password_from_env)
            if not password:
                raise CommandError(f"environment variable {password_from_env} is not set or empty")
        else:
            try:
                password = getpass.getpass("Password: ")
                if password != getpass.getpass("Password (again): "):
                    raise CommandError("the passwords do not match")
            except EOFError as exc:
                raise CommandError("no password given (use --password-from-env VAR without a terminal)") from exc
        try:
            with transaction.atomic():  # never a regulator without an authenticator
                user = user_create(username=username, password=password, role=User.Role.REGULATOR)
                uri = user_totp_set(user=user, secret=secret)
        except DomainError as exc:
            raise CommandError(domain_error_text(exc)) from exc
        self.stdout.write(f"created regulator {user.username}")
        if secret is None:
            print_generated_uri(self.stdout, uri)
