from django.core.management.base import BaseCommand, CommandError

from regulator.services.risk import compute_risk


class Command(BaseCommand):
    help = "Recompute every merchant's risk score (the nightly job)."

    def handle(self, *args, **options):
        try:
            run = compute_risk(progress=lambda message: self.stderr.write(message))
        except Exception as exc:
            raise CommandError(f"compute_risk failed: {exc}") from exc
        self.stdout.write(
            f"scored {run.merchants} merchants at {run.computed_at.isoformat()}: "
            f"{run.high} high, {run.flagged} newly flagged"
        )
