from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from core import clock
from core.errors import DomainError
from merchants.models import Settlement
from merchants.services.settlement import settlement_run


class Command(BaseCommand):
    help = "Settle a Beijing day (default: yesterday) for every merchant and make the payouts. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD (default: yesterday in Beijing)")

    def handle(self, *args, **options):
        day = options["date"] or clock.local_date() - timedelta(days=1)

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"settled {done}/{total} merchants")

        try:
            run = settlement_run(day=day, progress=progress)
        except DomainError as exc:
            raise CommandError(str(exc.detail)) from exc
        settlements = Settlement.objects.filter(run=run)
        paid = settlements.filter(payout_state=Settlement.PayoutState.PAID).count()
        held = settlements.filter(payout_state=Settlement.PayoutState.HELD).count()
        self.stdout.write(
            f"{day.isoformat()}: {settlements.count()} settlements, {paid} paid, {held} held, "
            f"window {run.since.isoformat()} .. {run.cutoff.isoformat()}"
        )
