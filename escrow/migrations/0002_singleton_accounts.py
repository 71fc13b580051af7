from django.db import migrations
from django.utils import timezone


def create_singletons(apps, schema_editor):
    Account = apps.get_model("escrow", "Account")
    for kind, name in (("custody", "Custody bank account"), ("refund_payable", "Refunds payable to consumers")):
        Account.objects.get_or_create(kind=kind, defaults={"name": name, "created_at": timezone.now()})


class Migration(migrations.Migration):
    dependencies = [("escrow", "0001_initial")]

    operations = [migrations.RunPython(create_singletons, migrations.RunPython.noop)]
