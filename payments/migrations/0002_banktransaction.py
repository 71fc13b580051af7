"""The sandbox bank's statement (``BankTransaction``) moves here from ``escrow`` with its gateways, in
the state only: its table (``escrow_banktransaction``) and rows stay, on databases migrated before and
on new ones alike (``escrow.0010_banktransaction_moved`` drops it from the ledger's state)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0004_bank_transaction"),
        ("payments", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="BankTransaction",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[("charge", "charge"), ("refund", "refund"), ("payout", "payout")],
                                max_length=16,
                            ),
                        ),
                        ("reference", models.CharField(max_length=255, unique=True)),
                        ("amount", models.BigIntegerField()),
                        ("created_at", models.DateTimeField()),
                    ],
                    options={"db_table": "escrow_banktransaction"},
                ),
            ],
            database_operations=[],
        ),
    ]
