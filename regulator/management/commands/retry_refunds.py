from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from refunds.models import Refund
from regulator.services.refunds import regulator_refund_retry


class Command(BaseCommand):
    help = (
        "Send failed refunds to the gateway again, each under its first idempotency key (paid once). "
        "Give refund ids, or --all-failed. Prints what it did; exits 1 when any refund could not be retried."
    )

    def add_arguments(self, parser):
        parser.add_argument("refund_ids", nargs="*", metavar="REFUND_ID", help="refunds to send again")
        parser.add_argument("--all-failed", action="store_true", help="every refund now failed")

    def handle(self, *args, **options):
        ids = list(options["refund_ids"])
        if options["all_failed"]:
            if ids:
                raise CommandError("give refund ids or --all-failed, not both")
            ids = [str(pk) for pk in Refund.objects.filter(state=Refund.State.FAILED).values_list("pk", flat=True)]
        elif not ids:
            raise CommandError("give refund ids or --all-failed")
        refused = 0
        for refund_id in ids:
            try:
                refund = regulator_refund_retry(
                    refund_id=refund_id, actor_id=None, actor_label="manage.py retry_refunds"
                )
            except DomainError as exc:
                refused += 1
                self.stdout.write(f"{refund_id}: not retried ({exc.code}: {exc.detail})")
                continue
            self.stdout.write(f"{refund.pk}: sent again ({refund.amount} fen, {refund.attempts} attempts before)")
        self.stdout.write(f"{len(ids) - refused} of {len(ids)} refunds sent again")
        if refused:
            raise CommandError(f"{refused} of {len(ids)} refunds could not be retried")
