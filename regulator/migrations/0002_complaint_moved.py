"""The complaint model moved to ``complaints`` (its ``0001_initial``): the regulator forgets it in the
state only; the table stays, now the complaints app's (``db_table = "regulator_complaint"``)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("regulator", "0001_initial"),
        ("complaints", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Complaint")],
            database_operations=[],
        ),
    ]
