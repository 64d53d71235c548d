from django.db import migrations

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION switchboard_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON orchestration_auditevent
    FOR EACH ROW EXECUTE FUNCTION switchboard_audit_append_only();
CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON orchestration_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION switchboard_audit_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS audit_event_append_only ON orchestration_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_truncate ON orchestration_auditevent;
DROP FUNCTION IF EXISTS switchboard_audit_append_only();
"""


def create_chain_head(apps, schema_editor):
    apps.get_model("orchestration", "AuditChainHead").objects.get_or_create(pk=1)


def protect_trail(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY)


def unprotect_trail(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_APPEND_ONLY)


class Migration(migrations.Migration):
    dependencies = [("orchestration", "0001_initial")]
    operations = [
        migrations.RunPython(create_chain_head, migrations.RunPython.noop),
        migrations.RunPython(protect_trail, unprotect_trail),
    ]
