import getpass
import os

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from core.models import User
from core.services import user_create


class Command(BaseCommand):
    help = "Create a regulator user. Prompts for the password unless --password-from-env names a variable."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password-from-env", metavar="VAR", help="read the password from this variable")

    def handle(self, *args, username, password_from_env, **options):
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
            user = user_create(username=username, password=password, role=User.Role.REGULATOR)
        except DomainError as exc:
            reasons = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in (exc.errors or {}).items())
            raise CommandError(reasons or str(exc.detail)) from exc
        self.stdout.write(f"created regulator {user.username}")
