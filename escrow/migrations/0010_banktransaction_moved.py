"""``BankTransaction`` moved to ``payments`` (its ``0002_banktransaction``) with the gateways: the
ledger forgets it in the state only; the table stays (``db_table = "escrow_banktransaction"``)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0009_stripeevent_moved"),
        ("payments", "0002_banktransaction"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="BankTransaction")],
            database_operations=[],
        ),
    ]
