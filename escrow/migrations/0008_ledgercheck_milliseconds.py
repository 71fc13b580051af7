"""A ledger check's duration in whole milliseconds (an integer) instead of float seconds."""

from django.db import migrations, models


def seconds_to_milliseconds(apps, schema_editor):
    LedgerCheck = apps.get_model("escrow", "LedgerCheck")
    for check in LedgerCheck.objects.only("pk", "seconds").iterator():  # one row a day
        LedgerCheck.objects.filter(pk=check.pk).update(milliseconds=round(check.seconds * 1000))


def milliseconds_to_seconds(apps, schema_editor):
    LedgerCheck = apps.get_model("escrow", "LedgerCheck")
    for check in LedgerCheck.objects.only("pk", "milliseconds").iterator():
        LedgerCheck.objects.filter(pk=check.pk).update(seconds=check.milliseconds / 1000)


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0007_ledger_check"),
    ]

    operations = [
        migrations.AddField(
            model_name="ledgercheck", name="milliseconds", field=models.PositiveIntegerField(default=0)
        ),
        migrations.AlterField(model_name="ledgercheck", name="seconds", field=models.FloatField(default=0)),
        migrations.RunPython(seconds_to_milliseconds, milliseconds_to_seconds),
        migrations.RemoveField(model_name="ledgercheck", name="seconds"),
        migrations.AlterField(model_name="ledgercheck", name="milliseconds", field=models.PositiveIntegerField()),
    ]
