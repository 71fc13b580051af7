"""merchant_default refunds and refund deadlines: ``due_by`` (kept refunds get created_at + 5 days,
the default REFUND_DUE_DAYS), ``attempts``, ``last_error`` (a failed refund's is its failure reason),
``overdue_at``; and ``RefundEntitlement``."""

from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def deadlines_of_kept_refunds(apps, schema_editor):
    Refund = apps.get_model("refunds", "Refund")
    Refund.objects.filter(due_by__isnull=True).update(due_by=F("created_at") + timedelta(days=5))
    Refund.objects.filter(state="failed").update(last_error=F("failure_reason"))


class Migration(migrations.Migration):
    dependencies = [
        ("consumers", "0004_card_card_paid_at_idx"),
        ("refunds", "0002_massrefund"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="RefundEntitlement",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("reason", models.CharField(choices=[("complaint_upheld", "complaint upheld")], max_length=20)),
                ("source", models.CharField(max_length=64)),
                ("created_at", models.DateTimeField()),
            ],
        ),
        migrations.AddField(
            model_name="refund",
            name="attempts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="refund",
            name="due_by",
            field=models.DateTimeField(null=True),
        ),
        migrations.AddField(
            model_name="refund",
            name="last_error",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="refund",
            name="overdue_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(deadlines_of_kept_refunds, migrations.RunPython.noop),
        migrations.AlterField(model_name="refund", name="due_by", field=models.DateTimeField()),
        migrations.AlterField(
            model_name="refund",
            name="reason",
            field=models.CharField(
                choices=[
                    ("cooling_off", "cooling-off"),
                    ("small_balance", "small balance"),
                    ("voluntary", "voluntary"),
                    ("merchant_closure", "merchant closure"),
                    ("merchant_default", "merchant in default"),
                ],
                max_length=20,
            ),
        ),
        migrations.AddIndex(
            model_name="refund",
            index=models.Index(fields=["state", "due_by"], name="refund_state_due_idx"),
        ),
        migrations.AddField(
            model_name="refundentitlement",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="refundentitlement",
            name="card",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT, related_name="refund_entitlements", to="consumers.card"
            ),
        ),
        migrations.AddConstraint(
            model_name="refundentitlement",
            constraint=models.UniqueConstraint(fields=("card", "source"), name="refund_entitlement_once"),
        ),
    ]
