"""Complaints become an app of their own. The model moves here from ``regulator`` in the state only:
the table (``regulator_complaint``), its rows, indexes and foreign keys stay as they are, on databases
migrated before and on new ones alike (``regulator.0002_complaint_moved`` drops it from the regulator's
state once this has taken it)."""

import uuid

import django.db.models.deletion
import django_fsm
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("regulator", "0001_initial"),
        ("consumers", "0004_card_card_paid_at_idx"),
        ("merchants", "0005_merchant_risk"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Complaint',
                    fields=[
                        ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ('source', models.CharField(choices=[('app', 'app'), ('hotline', '12345 hotline')], max_length=8)),
                        ('hotline_reference', models.CharField(blank=True, max_length=64, null=True, unique=True)),
                        ('category', models.CharField(choices=[('refund_refused', 'refund refused'), ('service_quality', 'service quality'), ('service_unavailable', 'service unavailable'), ('closure', 'closed or vanished'), ('misleading_sales', 'misleading sales'), ('contract_terms', 'unfair contract terms'), ('other', 'other')], max_length=24)),
                        ('description', models.TextField()),
                        ('urgent', models.BooleanField(default=False)),
                        ('state', django_fsm.FSMField(choices=[('open', 'open'), ('responded', 'responded'), ('overdue', 'overdue'), ('closed', 'closed')], default='open', max_length=50, protected=True)),
                        ('respond_by', models.DateTimeField()),
                        ('overdue_at', models.DateTimeField(blank=True, null=True)),
                        ('response', models.TextField(blank=True, default='')),
                        ('responded_at', models.DateTimeField(blank=True, null=True)),
                        ('resolution', models.TextField(blank=True, default='')),
                        ('closed_at', models.DateTimeField(blank=True, null=True)),
                        ('created_at', models.DateTimeField()),
                        ('card', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='complaints', to='consumers.card')),
                        ('closed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('consumer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='complaints', to='consumers.consumer')),
                        ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('merchant', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='complaints', to='merchants.merchant')),
                    ],
                    options={
                        'db_table': 'regulator_complaint',
                        'indexes': [models.Index(fields=['merchant', 'created_at'], name='complaint_merchant_created_idx'), models.Index(fields=['state', 'respond_by'], name='complaint_state_respond_by_idx'), models.Index(fields=['created_at'], name='complaint_created_idx')],
                    },
                    bases=(django_fsm.FSMModelMixin, models.Model),
                ),
            ],
            database_operations=[],
        ),
    ]
