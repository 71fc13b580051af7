"""Business for the backup drill, written through the real services into the database DATABASE_URL
names: ``python -m tests.ops.backup_world BATCH CARDS`` registers a merchant and a product, sells
CARDS cards paid through the sandbox bank, and has the first service of each confirmed (a release),
all under names of BATCH so that batches add up; then runs ``verify_ledger``, whose JSON it prints
(and which exits 1 on an unsound ledger). Tasks run inline (CELERY_TASK_ALWAYS_EAGER)."""

from __future__ import annotations

import hashlib
import os
import sys

PASSWORD = "a-long-passphrase-for-the-drill"


def write(batch: str, cards: int) -> None:
    from consumers.services import (
        card_purchase,
        consumer_register,
        payment_simulate,
        redemption_confirm,
        redemption_request,
    )
    from merchants.registry import uscc_check_character
    from merchants.services.merchants import merchant_register, product_create

    first17 = f"9111010{int(hashlib.sha256(batch.encode()).hexdigest(), 16) % 10**10:010d}"
    merchant = merchant_register(
        username=f"drill-{batch}-gym",
        password=PASSWORD,
        name=f"演练健身 {batch}",
        license_number=first17 + uscc_check_character(first17),
        category="fitness",
        district="朝阳区",
        address="1 Drill Road",
    )
    product = product_create(merchant=merchant, name="10 sessions", kind="session_pack", price=100_000, sessions=10)
    for n in range(cards):
        consumer = consumer_register(
            username=f"drill-{batch}-{n}", password=PASSWORD, display_name=f"Drill {n}", phone="13800001234"
        )
        card = card_purchase(consumer=consumer, product_id=product.pk)
        payment_simulate(consumer=consumer, payment_id=card.payment.pk, outcome="succeeded")
        redemption = redemption_request(merchant=merchant, card_id=card.pk)
        redemption_confirm(consumer=consumer, redemption_id=redemption.pk)


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    write(sys.argv[1], int(sys.argv[2]))
    call_command("verify_ledger")
