"""Payments become an app of their own: ``StripeEvent`` moves here from ``escrow`` in the state only;
its table (``escrow_stripeevent``) and rows stay, on databases migrated before and on new ones alike
(``escrow.0009_stripeevent_moved`` drops it from the ledger's state once this has taken it)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("escrow", "0005_stripe_event"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="StripeEvent",
                    fields=[
                        ("id", models.CharField(max_length=255, primary_key=True, serialize=False)),
                        ("type", models.CharField(max_length=100)),
                        ("received_at", models.DateTimeField()),
                    ],
                    options={"db_table": "escrow_stripeevent"},
                ),
            ],
            database_operations=[],
        ),
    ]
