from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo import seed as demo


class Command(BaseCommand):
    help = "Load the demo data (a Beijing market with 90 days of history) once; run again, it does nothing."

    def handle(self, *args, **options):
        state = demo.demo_state()
        if state == demo.LOADED:
            self.stdout.write("Demo data is already loaded; nothing to do.")
            self._logins()
            return
        if state == demo.UNFINISHED:
            raise CommandError(
                "an earlier seed_demo stopped half-way; reset the database (make clean, or drop it) and run it again"
            )
        if state == demo.OCCUPIED:
            self.stdout.write(
                "Not loading the demo data: the database already holds merchants, cards, ledger entries or the "
                "demo's usernames of its own (the demo loads into an empty database only)."
            )
            return
        if settings.PAYMENT_GATEWAY != "local":
            self.stdout.write(
                "Not loading the demo data: it pays through the local sandbox gateway (PAYMENT_GATEWAY=local)."
            )
            return
        self.stdout.write("Loading the demo data (a Beijing market, 90 days of history)...")
        loaded = demo.demo_load(say=self.stdout.write)
        counts = loaded.counts
        self.stdout.write(
            f"Loaded in {loaded.seconds:.1f}s: {len(loaded.users)} users, {counts['cards']} cards, "
            f"{counts['services']} services confirmed, {counts['rejected']} rejected, {counts['refunds']} refunds, "
            f"{counts['complaints']} complaints, {counts['settlement']} settlement runs (with their payouts)."
        )
        self.stdout.write("Highest risk (what the regulator sees first):")
        for merchant in demo.demo_risk_top(5):
            self.stdout.write(
                f"  {merchant.risk_score:3d} {merchant.risk_level:6s} {merchant.name}  (login {merchant.user.username})"
            )
        self._logins()

    def _logins(self) -> None:
        self.stdout.write(f"Demo logins (password for every demo user: {demo.DEMO_PASSWORD}):")
        for login in demo.demo_logins():
            self.stdout.write(f"  {login.role:9s} {login.username:14s} {login.shows}")
        self.stdout.write(f"  and the others: {demo.demo_other_logins()}")
        uri = demo.demo_regulator_totp()
        if uri is not None:
            self.stdout.write(
                f"The regulator also enters a 6-digit code from an authenticator app (TOTP). Add the demo's to "
                f"yours by scanning the QR code on the login page (debug mode) or with this URI (secret "
                f"{demo.DEMO_TOTP_SECRET}):\n  {uri}\n"
                f"  or print the current code: .venv/bin/python manage.py demo_totp_code"
            )
