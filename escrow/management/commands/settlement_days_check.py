from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError

from core import clock
from escrow.selectors import settlement_day_mismatches


class Command(BaseCommand):
    help = (
        "Reconcile a Beijing day's merchant day totals (what settlement pays) with the day's release and fee "
        "postings; exit 1 on any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD (default: yesterday in Beijing)")

    def handle(self, *args, **options):
        day = options["date"] or clock.local_date() - timedelta(days=1)
        mismatches = settlement_day_mismatches(day=day)
        for account, kept, posted in mismatches:
            self.stdout.write(f"account {account}: kept (released, fees, releases) {kept}, from the postings {posted}")
        if mismatches:
            raise CommandError(f"{day.isoformat()}: {len(mismatches)} accounts' day totals differ from the postings")
        self.stdout.write(f"{day.isoformat()}: day totals equal the postings")
