"""On PostgreSQL the audit trail is append-only in the database itself: no DELETE, and no UPDATE
except the foreign keys Django nulls when a user or batch is deleted (SET_NULL)."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION annotation_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit trail is append-only: DELETE on annotation_auditevent is not allowed';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.action IS DISTINCT FROM OLD.action
       OR NEW.object_type IS DISTINCT FROM OLD.object_type OR NEW.object_id IS DISTINCT FROM OLD.object_id
       OR NEW.data IS DISTINCT FROM OLD.data OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR (NEW.actor_id IS DISTINCT FROM OLD.actor_id AND NEW.actor_id IS NOT NULL)
       OR (NEW.batch_id IS DISTINCT FROM OLD.batch_id AND NEW.batch_id IS NOT NULL) THEN
        RAISE EXCEPTION 'the audit trail is append-only: UPDATE on annotation_auditevent is not allowed';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS annotation_audit_append_only ON annotation_auditevent;
CREATE TRIGGER annotation_audit_append_only BEFORE UPDATE OR DELETE ON annotation_auditevent
    FOR EACH ROW EXECUTE FUNCTION annotation_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS annotation_audit_append_only ON annotation_auditevent;
DROP FUNCTION IF EXISTS annotation_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0002_import_indexes")]
    operations = [migrations.RunPython(forwards, backwards)]
