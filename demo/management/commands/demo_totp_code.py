from django.core.management.base import BaseCommand, CommandError

from demo import seed as demo


class Command(BaseCommand):
    help = (
        "Print the demo regulator's current 6-digit authenticator code (TOTP), for signing in to the demo "
        "without an authenticator app. Each code is taken once: a second sign-in waits for the next (30 s)."
    )

    def handle(self, *args, **options):
        code = demo.demo_regulator_code()
        if code is None:
            raise CommandError("no demo regulator with the demo's authenticator here (load the demo: seed_demo)")
        self.stdout.write(code)
