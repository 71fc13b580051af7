"""PostgreSQL backstops for the ledger's invariants (see escrow/models.py).

- Entries and postings are append-only: UPDATE and DELETE raise, whoever sends them.
- At commit, every entry touched by the transaction must have two or more postings summing to zero
  (deferred constraint triggers, so an entry and its postings can be inserted in any order).

SQLite has no deferred triggers; there the services' own checks stand alone.
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION escrow_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER escrow_journalentry_append_only BEFORE UPDATE OR DELETE ON escrow_journalentry
    FOR EACH ROW EXECUTE FUNCTION escrow_refuse_change();
CREATE TRIGGER escrow_posting_append_only BEFORE UPDATE OR DELETE ON escrow_posting
    FOR EACH ROW EXECUTE FUNCTION escrow_refuse_change();

CREATE FUNCTION escrow_check_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    target bigint;
    total numeric;
    legs integer;
BEGIN
    IF TG_TABLE_NAME = 'escrow_posting' THEN
        target := NEW.entry_id;
    ELSE
        target := NEW.id;
    END IF;
    SELECT COALESCE(SUM(amount), 0), COUNT(*) INTO total, legs FROM escrow_posting WHERE entry_id = target;
    IF legs < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'journal entry % is unbalanced: % postings summing to %', target, legs, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER escrow_journalentry_balanced AFTER INSERT ON escrow_journalentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION escrow_check_entry_balanced();
CREATE CONSTRAINT TRIGGER escrow_posting_balanced AFTER INSERT ON escrow_posting
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION escrow_check_entry_balanced();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS escrow_posting_balanced ON escrow_posting;
DROP TRIGGER IF EXISTS escrow_journalentry_balanced ON escrow_journalentry;
DROP FUNCTION IF EXISTS escrow_check_entry_balanced();
DROP TRIGGER IF EXISTS escrow_posting_append_only ON escrow_posting;
DROP TRIGGER IF EXISTS escrow_journalentry_append_only ON escrow_journalentry;
DROP FUNCTION IF EXISTS escrow_refuse_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(FORWARD)  # no params: the '%' of RAISE stays literal


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [("escrow", "0002_singleton_accounts")]

    operations = [migrations.RunPython(forward, backward)]
