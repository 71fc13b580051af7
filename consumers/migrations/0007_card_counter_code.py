"""Cards get a counter code (``Card.counter_code``): added empty, every existing card given its own
random code, then made required and unique. (A column default would have given every existing
card the same code.)"""

from django.db import migrations, models

import consumers.models


def backfill(apps, schema_editor):
    Card = apps.get_model("consumers", "Card")
    taken: set[str] = set()
    batch = []
    for card in Card.objects.filter(counter_code__isnull=True).only("pk").order_by("pk").iterator(chunk_size=2000):
        code = consumers.models.counter_code_new()
        while code in taken:  # no card has a code yet: only this run's draws can collide
            code = consumers.models.counter_code_new()
        taken.add(code)
        card.counter_code = code
        batch.append(card)
        if len(batch) == 2000:
            Card.objects.bulk_update(batch, ["counter_code"])
            batch = []
    Card.objects.bulk_update(batch, ["counter_code"])


class Migration(migrations.Migration):
    dependencies = [
        ("consumers", "0006_card_rules_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="card",
            name="counter_code",
            field=models.CharField(editable=False, max_length=8, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="card",
            name="counter_code",
            field=models.CharField(
                default=consumers.models.counter_code_new, editable=False, max_length=8, unique=True
            ),
        ),
    ]
