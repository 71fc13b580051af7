"""``manage.py ledger_split_custody``: give every merchant its own custody and refunds-payable
accounts (``refunds.services.merchant_custody_split``), one merchant per transaction."""

import time

from django.core.management.base import BaseCommand, CommandError

from escrow.errors import InsufficientFunds
from merchants.models import Merchant
from refunds.services import merchant_custody_split


class Command(BaseCommand):
    help = (
        "Move every merchant that still uses the city-wide custody and refunds-payable accounts onto accounts "
        "of its own, with a balanced correction entry each (its cards' escrow + its unpaid settlement + its "
        "unpaid refunds in custody; its unpaid refunds in refunds payable). One merchant per transaction: "
        "stopped, it resumes where it stopped when run again. Run it while the workers and web servers are "
        "stopped (a payment in flight for a merchant being split would post to the city-wide accounts)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every", type=int, default=100, help="print progress every this many merchants")

    def handle(self, *args, **options):
        todo = list(Merchant.objects.filter(custody_account__isnull=True).order_by("pk").values_list("pk", flat=True))
        self.stdout.write(f"{len(todo)} merchants use the city-wide accounts")
        started = time.monotonic()
        moved = custody = payable = 0
        for done, merchant_id in enumerate(todo, start=1):
            try:
                split = merchant_custody_split(merchant_id=merchant_id)
            except InsufficientFunds as exc:
                raise CommandError(
                    f"merchant {merchant_id}: the city-wide accounts hold less than its share; the ledger needs "
                    f"checking (manage.py verify_ledger) before it can be split. {done - 1} merchants were split."
                ) from exc
            if split.split_now:
                moved += 1
                custody += split.custody
                payable += split.refund_payable
            if done % options["every"] == 0 or done == len(todo):
                self.stdout.write(
                    f"{done}/{len(todo)} merchants, {moved} split, {custody} fen of custody and {payable} fen of "
                    f"refunds payable moved ({time.monotonic() - started:.1f} s)"
                )
        self.stdout.write(self.style.SUCCESS(f"done: {moved} merchants now have their own accounts"))
