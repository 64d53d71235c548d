from django.db import migrations

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION switchboard_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % is not allowed', TG_OP;
END;
$$ LANGUAGE plpgsql;
-- Emptying the whole table is refused too, unless the session says it is wiping a scratch
-- database on purpose (the test suite does, between tests). This guards against mistakes in
-- the application; someone who can run SQL as the table's owner could drop the trigger anyway.
CREATE OR REPLACE FUNCTION switchboard_audit_no_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('switchboard.wipe_audit_trail', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: TRUNCATE is not allowed';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only
    BEFORE UPDATE OR DELETE ON orchestration_auditevent
    FOR EACH ROW EXECUTE FUNCTION switchboard_audit_append_only();
CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON orchestration_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION switchboard_audit_no_truncate();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS audit_event_append_only ON orchestration_auditevent;
DROP TRIGGER IF EXISTS audit_event_no_truncate ON orchestration_auditevent;
DROP FUNCTION IF EXISTS switchboard_audit_append_only();
DROP FUNCTION IF EXISTS switchboard_audit_no_truncate();
"""


def create_chain_head(apps, schema_editor):
    apps.get_model("orchestration", "AuditChainHead").objects.get_or_create(pk=1)


def protect_trail(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY, params=None)


def unprotect_trail(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_APPEND_ONLY, params=None)


class Migration(migrations.Migration):
    dependencies = [("orchestration", "0001_initial")]
    operations = [
        migrations.RunPython(create_chain_head, migrations.RunPython.noop),
        migrations.RunPython(protect_trail, unprotect_trail),
    ]
