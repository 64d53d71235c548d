"""The audit trail: hash-chained, append-only, verifiable."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction

from orchestration.models import AuditEvent
from orchestration.services.audit import record_event, verify_chain


def three_events():
    for n in range(3):
        record_event(action="test.happened", object_type="thing", object_id=n, after={"n": n})


def test_events_chain_to_their_predecessor(db):
    three_events()
    events = list(AuditEvent.objects.order_by("sequence"))
    assert [e.sequence for e in events] == [1, 2, 3]
    assert events[0].previous_hash == "0" * 64
    assert events[1].previous_hash == events[0].hash
    assert verify_chain().intact


def test_the_verify_command_reports_an_intact_trail(db, capsys):
    three_events()
    call_command("verify_audit")
    assert "audit trail intact: 3 events" in capsys.readouterr().out


def test_the_database_refuses_to_change_or_delete_an_event(db):
    three_events()
    with pytest.raises((InternalError, ProgrammingError, IntegrityError)), transaction.atomic():
        AuditEvent.objects.filter(sequence=2).update(action="test.forged")
    with pytest.raises((InternalError, ProgrammingError, IntegrityError)), transaction.atomic():
        AuditEvent.objects.filter(sequence=2).delete()
    with (
        pytest.raises((InternalError, ProgrammingError)),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL switchboard.wipe_audit_trail = 'off'")
        cursor.execute("TRUNCATE orchestration_auditevent")
    assert AuditEvent.objects.count() == 3


def test_tampering_behind_the_database_s_back_is_detected(db):
    three_events()
    with connection.cursor() as cursor:
        # Someone with the table owner's rights switches the guard off and edits history.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE orchestration_auditevent DISABLE TRIGGER audit_event_append_only"
        )
        cursor.execute(
            "UPDATE orchestration_auditevent SET after = '{\"n\": 99}' WHERE sequence = 2"
        )
    report = verify_chain()
    assert not report.intact
    assert report.first_bad_sequence == 2
    with pytest.raises(CommandError, match="broken at event #2"):
        call_command("verify_audit")


def test_a_removed_event_is_detected(db):
    three_events()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE orchestration_auditevent DISABLE TRIGGER audit_event_append_only"
        )
        cursor.execute("DELETE FROM orchestration_auditevent WHERE sequence = 3")
    report = verify_chain()
    assert report.first_bad_sequence == 3
