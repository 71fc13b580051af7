"""The rules profile version a closure notice was checked against (issue 16): merchants that gave notice before get "" (not recorded)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("merchants", "0006_filing"),
    ]

    operations = [
        migrations.AddField(
            model_name="merchant",
            name="closure_rules_version",
            field=models.CharField(blank=True, db_default="", default="", max_length=32),
        ),
    ]
