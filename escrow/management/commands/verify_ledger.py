import json

from django.core.management.base import BaseCommand, CommandError

from escrow import selectors, services


class Command(BaseCommand):
    help = (
        "Verify the escrow ledger (balance, hash chains, custody) and keep the result for the regulator's "
        "ledger page; exit 1 on any failure."
    )

    def handle(self, *args, **options):
        _check, result = services.ledger_check_verify_and_keep()
        self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False))
        if not selectors.ledger_ok(result):
            raise CommandError("ledger verification failed: " + "; ".join(result["problems"]))
