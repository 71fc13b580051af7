"""The rules profile version that set a complaint's ``respond_by`` (issue 16); complaints filed before get "" (not recorded)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("complaints", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="complaint",
            name="rules_version",
            field=models.CharField(blank=True, db_default="", default="", max_length=32),
        ),
    ]
