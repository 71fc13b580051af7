"""Day totals of merchant settlement accounts (``escrow.models.SettlementDayTotal``), built from the
release and fee postings already in the journal; from here on ``escrow.services`` keeps them as
postings are made."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Case, Count, ExpressionWrapper, F, Q, Sum, Value, When
from django.db.models.functions import TruncDate

BATCH = 10_000


def backfill(apps, schema_editor):
    """One aggregate over the release and fee postings to merchant settlement accounts, per account
    and business day (an instant at Beijing midnight closes the day before: ``core.clock.business_day``),
    written in batches."""
    Posting = apps.get_model("escrow", "Posting")
    SettlementDayTotal = apps.get_model("escrow", "SettlementDayTotal")
    db = schema_editor.connection.alias
    money = models.BigIntegerField()
    moment = ExpressionWrapper(F("entry__created_at") - timedelta(microseconds=1), output_field=models.DateTimeField())
    rows = (
        Posting.objects.using(db)
        .filter(account__kind="merchant_settlement", entry__code__in=["release", "fee"])
        .annotate(day=TruncDate(moment, tzinfo=ZoneInfo("Asia/Shanghai")))
        .values("account_id", "day")
        .annotate(
            released=Sum(Case(When(entry__code="release", then=-F("amount")), default=Value(0), output_field=money)),
            fees=Sum(Case(When(entry__code="fee", then=-F("amount")), default=Value(0), output_field=money)),
            releases_count=Count("pk", filter=Q(entry__code="release")),
        )
        .order_by()
    )
    batch = []
    for row in rows.iterator(chunk_size=BATCH):
        batch.append(SettlementDayTotal(**row))
        if len(batch) == BATCH:
            SettlementDayTotal.objects.using(db).bulk_create(batch)
            batch = []
    SettlementDayTotal.objects.using(db).bulk_create(batch)


class Migration(migrations.Migration):
    dependencies = [
        ("escrow", "0012_account_city_wide"),
    ]

    operations = [
        migrations.CreateModel(
            name="SettlementDayTotal",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("released", models.BigIntegerField(default=0)),
                ("fees", models.BigIntegerField(default=0)),
                ("releases_count", models.BigIntegerField(default=0)),
                (
                    "account",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="escrow.account",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("day", "account"), name="settlementdaytotal_day_account_unique")
                ],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
