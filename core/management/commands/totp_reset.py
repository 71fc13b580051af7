from django.core.management.base import BaseCommand, CommandError

from core.management.totp import print_generated_uri, totp_secret_of_env
from core.models import User
from core.services import user_totp_set


class Command(BaseCommand):
    help = (
        "Give a regulator a new TOTP authenticator (a lost phone, or an account made before two factors): "
        "the secret from --totp-secret-from-env VAR (base32), or generated and its otpauth:// URI printed once. "
        "The old authenticator's codes stop working."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--totp-secret-from-env",
            metavar="VAR",
            help="read the authenticator's secret (base32) from this variable; without it a secret is generated",
        )

    def handle(self, *args, username, totp_secret_from_env, **options):
        secret = totp_secret_of_env(totp_secret_from_env)
        user = User.objects.filter(username=User.normalize_username(username)).first()
        if user is None:
            raise CommandError(f"no user {username}")
        if not user.needs_second_factor:
            raise CommandError(f"{username} is a {user.role}: only regulators sign in with an authenticator")
        uri = user_totp_set(user=user, secret=secret)
        self.stdout.write(f"new authenticator for {user.username}")
        if secret is None:
            print_generated_uri(self.stdout, uri)
