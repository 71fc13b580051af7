"""The rules profile version that set a refund's ``due_by`` (issue 16); refunds booked before get "" (not recorded)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("refunds", "0003_refund_deadlines_default"),
    ]

    operations = [
        migrations.AddField(
            model_name="refund",
            name="rules_version",
            field=models.CharField(blank=True, db_default="", default="", max_length=32),
        ),
    ]
