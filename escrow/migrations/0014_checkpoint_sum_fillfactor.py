"""Room on each page of the checkpoint's account totals for their next versions (PostgreSQL).

A passing check replaces the totals of every account it saw postings for: a day at ten times
today's books, 1.1 million rows. With the pages full, each new version lands on another page and
adds an entry to the primary key's index; with half of each page free it stays on its page
(a heap-only tuple, no index entry), and the versions a check leaves dead are pruned by the next
one's visits. The table is read whole once a check (the accounts' pass), so its doubled size costs
that read little.
"""

from django.db import migrations

FORWARD = "ALTER TABLE escrow_ledgercheckpointsum SET (fillfactor = 50)"
BACKWARD = "ALTER TABLE escrow_ledgercheckpointsum RESET (fillfactor)"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("escrow", "0013_settlement_day_total")]

    operations = [migrations.RunPython(forward, backward)]
