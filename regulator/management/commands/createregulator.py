import getpass
import os

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from regulator.services.jurisdiction import jurisdiction_clean, regulator_create


def _reason(exc: DomainError) -> str:
    """A domain error as one line: its field errors, or its detail."""
    reasons = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in (exc.errors or {}).items())
    return reasons or str(exc.detail)


class Command(BaseCommand):
    help = (
        "Create a regulator user. Prompts for the password unless --password-from-env names a variable. "
        "Without --district or --category the regulator oversees the whole city."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password-from-env", metavar="VAR", help="read the password from this variable")
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

    def handle(self, *args, username, password_from_env, district, category, **options):
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
            user = regulator_create(username=username, password=password, districts=districts, categories=categories)
        except DomainError as exc:
            raise CommandError(_reason(exc)) from exc
        scope = f"districts {', '.join(districts) or 'all'}; categories {', '.join(categories) or 'all'}"
        self.stdout.write(f"created regulator {user.username} ({scope})")
