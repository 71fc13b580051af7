"""consumers.Notification moves to the notifications app (notifications.Notification, addressed to
a user). Every kept row is copied with its text, times and merchant; the old table is then dropped.
Backwards, the merchant_closing notices of consumers are copied back."""

from django.db import migrations


def forwards(apps, schema_editor):
    Old = apps.get_model("consumers", "Notification")
    New = apps.get_model("notifications", "Notification")
    batch = []
    for old in Old.objects.select_related("consumer").order_by("pk").iterator(chunk_size=2000):
        batch.append(
            New(
                user_id=old.consumer.user_id,
                kind=old.kind,
                event_key=f"{old.kind}:{old.merchant_id}" if old.merchant_id else f"{old.kind}:legacy-{old.pk}",
                title=old.title,
                body=old.body,
                merchant_id=old.merchant_id,
                about_money=True,
                channels=["in_app"],
                created_at=old.created_at,
                read_at=old.read_at,
            )
        )
        if len(batch) == 2000:
            New.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    New.objects.bulk_create(batch, ignore_conflicts=True)


def backwards(apps, schema_editor):
    Old = apps.get_model("consumers", "Notification")
    New = apps.get_model("notifications", "Notification")
    Consumer = apps.get_model("consumers", "Consumer")
    consumers = dict(Consumer.objects.values_list("user_id", "pk"))
    Old.objects.bulk_create(
        [
            Old(
                consumer_id=consumers[new.user_id],
                kind=new.kind,
                merchant_id=new.merchant_id,
                title=new.title,
                body=new.body,
                created_at=new.created_at,
                read_at=new.read_at,
            )
            for new in New.objects.filter(kind="merchant_closing", user_id__in=list(consumers)).iterator()
        ],
        ignore_conflicts=True,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("consumers", "0004_card_card_paid_at_idx"),
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.DeleteModel(name="Notification"),
    ]
