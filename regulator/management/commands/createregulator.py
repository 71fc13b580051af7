import getpass
import os

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.errors import DomainError
from core.management.totp import domain_error_text, print_generated_uri, totp_secret_of_env
from core.services import user_totp_set
from regulator.services.jurisdiction import jurisdiction_clean, regulator_create


class Command(BaseCommand):
    help = (
        "Create a regulator user. Prompts for the password unless --password-from-env names a variable. "
        "Without --district or --category the regulator oversees the whole city. The TOTP authenticator's "
        "secret is read from --totp-secret-from-env VAR (base32), or generated and its otpauth:// URI printed once."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password-from-env", metavar="VAR", help="read the password from this variable")
        parser.add_argument(
            "--totp-secret-from-env",
            metavar="VAR",
            help="read the authenticator's secret (base32) from this variable; without it a secret is generated",
        )
        parser.add_argument(
            "--district",
            action="append",
            default=[],
            metavar="NAME",
            help="a district it oversees: GB/T 2260 code or name (110105, 朝阳区); repeat for more",
        )
        parser.add_argument(
            "--category",
            action="append",
            default=[],
            metavar="CAT",
            help="a merchant category it oversees (fitness, education, ...); repeat for more",
        )

    def handle(self, *args, username, password_from_env, totp_secret_from_env, district, category, **options):
        secret = totp_secret_of_env(totp_secret_from_env)
        try:  # before the password is asked for: a typing error here costs nothing
            districts, categories = jurisdiction_clean(districts=district, categories=category)
        except DomainError as exc:
            raise CommandError(str(exc.detail)) from exc
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
                user = regulator_create(
                    username=username, password=password, districts=districts, categories=categories
                )
                uri = user_totp_set(user=user, secret=secret)
        except DomainError as exc:
            raise CommandError(domain_error_text(exc)) from exc
        scope = f"districts {', '.join(districts) or 'all'}; categories {', '.join(categories) or 'all'}"
        self.stdout.write(f"created regulator {user.username} ({scope})")
        if secret is None:
            print_generated_uri(self.stdout, uri)
