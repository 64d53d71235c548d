"""The audit trail: hash-chained, append-only, verifiable."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, InternalError, ProgrammingError, connection, transaction

from orchestration.models import AuditEvent
from orchestration.services.audit import record_event, verify_chain


def three_events() -> list[int]:
    """Append three events; their sequence numbers (after the default grants' events)."""
    return [
        record_event(
            action="test.happened", object_type="thing", object_id=n, after={"n": n}
        ).sequence
        for n in range(3)
    ]


def test_events_chain_to_their_predecessor(db):
    # A new database's trail opens with the default grants' events.
    opening = list(AuditEvent.objects.order_by("sequence"))
    assert opening[0].previous_hash == "0" * 64
    three_events()
    events = list(AuditEvent.objects.order_by("sequence"))[len(opening) :]
    start = len(opening)
    assert [e.sequence for e in events] == [start + 1, start + 2, start + 3]
    assert events[0].previous_hash == (opening[-1].hash if opening else "0" * 64)
    assert events[1].previous_hash == events[0].hash
    assert verify_chain().intact


def test_the_verify_command_reports_an_intact_trail(db, capsys):
    three_events()
    call_command("verify_audit")
    total = AuditEvent.objects.count()
    assert f"audit trail intact: {total} events" in capsys.readouterr().out


def test_the_database_refuses_to_change_or_delete_an_event(db):
    _, second, _ = three_events()
    total = AuditEvent.objects.count()
    with pytest.raises((InternalError, ProgrammingError, IntegrityError)), transaction.atomic():
        AuditEvent.objects.filter(sequence=second).update(action="test.forged")
    with pytest.raises((InternalError, ProgrammingError, IntegrityError)), transaction.atomic():
        AuditEvent.objects.filter(sequence=second).delete()
    with (
        pytest.raises((InternalError, ProgrammingError)),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL switchboard.wipe_audit_trail = 'off'")
        cursor.execute("TRUNCATE orchestration_auditevent")
    assert AuditEvent.objects.count() == total


def test_tampering_behind_the_database_s_back_is_detected(db):
    _, second, _ = three_events()
    with connection.cursor() as cursor:
        # Someone with the table owner's rights switches the guard off and edits history.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE orchestration_auditevent DISABLE TRIGGER audit_event_append_only"
        )
        cursor.execute(
            "UPDATE orchestration_auditevent SET after = '{\"n\": 99}' WHERE sequence = %s",
            [second],
        )
    report = verify_chain()
    assert not report.intact
    assert report.first_bad_sequence == second
    with pytest.raises(CommandError, match=f"broken at event #{second}"):
        call_command("verify_audit")


def test_a_removed_event_is_detected(db):
    *_, third = three_events()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE orchestration_auditevent DISABLE TRIGGER audit_event_append_only"
        )
        cursor.execute("DELETE FROM orchestration_auditevent WHERE sequence = %s", [third])
    report = verify_chain()
    assert report.first_bad_sequence == third
