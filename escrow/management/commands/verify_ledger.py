import json

from django.core.management.base import BaseCommand, CommandError

from escrow import selectors, services


class Command(BaseCommand):
    help = (
        "Verify the escrow ledger (balance, hash chains, custody) from the last passing check's checkpoint "
        "and keep the result for the regulator's ledger page; exit 1 on any failure."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--full", action="store_true", help="Recompute every chain and account from genesis (chains in parallel)."
        )

    def handle(self, *args, **options):
        _check, result = services.ledger_check_verify_and_keep(full=options["full"])
        self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False))
        if not selectors.ledger_ok(result):
            raise CommandError("ledger verification failed: " + "; ".join(result["problems"]))
