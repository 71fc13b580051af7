import json

from django.core.management.base import BaseCommand, CommandError

from escrow import selectors


class Command(BaseCommand):
    help = "Verify the escrow ledger (balance, hash chains, custody); exit 1 on any failure."

    def handle(self, *args, **options):
        result = selectors.ledger_verify()
        self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False))
        if not selectors.ledger_ok(result):
            raise CommandError("ledger verification failed: " + "; ".join(result["problems"]))
