"""``StripeEvent`` moved to ``payments`` (its ``0001_initial``): the ledger forgets it in the state
only; the table stays, now the payments app's (``db_table = "escrow_stripeevent"``)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0008_ledgercheck_milliseconds"),
        ("payments", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="StripeEvent")],
            database_operations=[],
        ),
    ]
