"""The audit trail screen: newest first, who and when, sign-ins, pages and filtering."""

import json
import re

import pytest
from django.forms.models import model_to_dict
from django.test import Client

from orchestration.models import AuditEvent
from orchestration.services.audit import record_event, verify_chain
from tests.conftest import client_for
from tests.console.test_approvals import table_rows

WRONG_PASSWORD = "Tr0ub4dor&3-not-alices"


def audit_rows(page: str) -> list[dict]:
    """Each row of the audit table as a dict of its columns."""
    rows = []
    for row in table_rows(page, "audit"):
        if len(row["cells"]) == 1:  # the "No events." row
            continue
        sequence, time, actor, action, obj, details = row["cells"]
        rows.append(
            {
                "sequence": int(sequence),
                "time": time,
                "actor": actor,
                "action": action,
                "object": obj,
                "details": details,
                "links": row["links"],
            }
        )
    return rows


def test_events_are_listed_newest_first_with_actor_and_time(db, alice, carol):
    record_event(action="policy.changed", actor=alice, object_type="policy", object_id=1)
    record_event(action="run.started", actor_label="agent:triage", object_type="run", object_id=42)
    record_event(
        action="ticket.ingested",
        actor_label="api:ivan",
        object_type="ticket",
        object_id=7,
        after={"channel": "api"},
    )
    page = client_for(carol).get("/audit/").content.decode()
    rows = audit_rows(page)
    sequences = [r["sequence"] for r in rows]
    assert sequences == sorted(sequences, reverse=True)
    assert sequences[0] == AuditEvent.objects.order_by("-sequence").first().sequence
    by_action = {r["action"]: r for r in rows}
    assert by_action["ticket.ingested"]["actor"] == "api:ivan"
    assert by_action["run.started"]["actor"] == "agent:triage"
    assert by_action["policy.changed"]["actor"] == "alice"
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", row["time"]), row
    assert by_action["run.started"]["links"] == ["/runs/42/"]
    assert '"channel": "api"' in by_action["ticket.ingested"]["details"]


def test_signing_in_through_the_login_form_is_on_the_trail(db, alice, carol):
    browser = Client(enforce_csrf_checks=True)
    form = browser.get("/login/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
    response = browser.post(
        "/login/",
        {"username": "alice", "password": "alice-password", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert browser.get("/approvals/").status_code == 200, "alice is signed in"

    event = AuditEvent.objects.get(action="user.login", actor=alice)
    assert event.actor_label == "alice"
    rows = audit_rows(client_for(carol).get("/audit/?action=user.login").content.decode())
    assert {"alice", "carol"} <= {r["actor"] for r in rows}
    assert all(r["action"] == "user.login" for r in rows)


def test_a_failed_sign_in_is_on_the_trail_without_the_password(db, alice, carol):
    response = Client().post("/login/", {"username": "alice", "password": WRONG_PASSWORD})
    assert response.status_code == 200
    assert "Your username and password didn't match" in response.content.decode()
    assert not AuditEvent.objects.filter(action="user.login").exists()

    event = AuditEvent.objects.get(action="user.login_failed")
    assert event.actor is None
    assert event.actor_label == "anonymous"
    assert event.after == {"username": "alice"}
    stored = json.dumps(model_to_dict(event), default=str)
    assert WRONG_PASSWORD not in stored
    assert "Tr0ub4dor" not in stored

    page = client_for(carol).get("/audit/").content.decode()
    assert WRONG_PASSWORD not in page and "Tr0ub4dor" not in page
    failed = [r for r in audit_rows(page) if r["action"] == "user.login_failed"]
    assert len(failed) == 1
    assert failed[0]["actor"] == "anonymous"
    assert '"username": "alice"' in failed[0]["details"]


def test_the_login_form_refuses_a_post_without_its_csrf_token(db, alice):
    response = Client(enforce_csrf_checks=True).post(
        "/login/", {"username": "alice", "password": "alice-password"}
    )
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="user.login").exists()


@pytest.fixture
def long_trail(db):
    """Seventy events, numbered in the order they happened."""
    for n in range(70):
        record_event(
            action="run.started" if n % 2 else "ticket.ingested",
            actor_label="system",
            object_type="note",
            object_id=f"n{n:02d}",
        )


def test_a_long_trail_is_paged_and_the_second_page_holds_older_events(long_trail, carol):
    before = AuditEvent.objects.count()
    client = client_for(carol)  # signing carol in adds one more event
    total = AuditEvent.objects.count()
    assert total == before + 1 and 50 < total <= 100

    first = client.get("/audit/").content.decode()
    rows = audit_rows(first)
    assert len(rows) == 50
    assert "Page 1 of 2" in first
    assert '<a href="?page=2">Older →</a>' in first
    assert rows[0]["action"] == "user.login"

    second = client.get("/audit/?page=2").content.decode()
    older = audit_rows(second)
    assert len(older) == total - 50
    assert max(r["sequence"] for r in older) < min(r["sequence"] for r in rows)
    assert [r["sequence"] for r in older] == sorted((r["sequence"] for r in older), reverse=True)
    assert older[-1]["sequence"] == 1, "the very first event is on the last page"
    assert '<a href="?page=1">← Newer</a>' in second
    assert "Older →" not in second


def test_the_trail_filters_by_action_across_pages(long_trail, carol):
    client = client_for(carol)
    page = client.get("/audit/?action=run.started").content.decode()
    rows = audit_rows(page)
    assert len(rows) == 35
    assert {r["action"] for r in rows} == {"run.started"}
    assert '<option value="run.started" selected>' in page
    assert "Pages" not in page, "35 events fit on one page"

    page = client.get("/audit/?action=ticket.ingested").content.decode()
    assert {r["action"] for r in audit_rows(page)} == {"ticket.ingested"}

    for n in range(20):
        record_event(
            action="run.started", actor_label="system", object_type="note", object_id=f"m{n:02d}"
        )
    page = client.get("/audit/?action=run.started").content.decode()
    assert len(audit_rows(page)) == 50
    assert '<a href="?action=run.started&amp;page=2">Older →</a>' in page
    second = audit_rows(client.get("/audit/?action=run.started&page=2").content.decode())
    assert len(second) == 5
    assert {r["action"] for r in second} == {"run.started"}


@pytest.mark.parametrize(
    "query", ["action=no.such.action", "page=abc", "page=999", "action=%3Cscript%3E"]
)
def test_an_odd_query_does_not_break_the_trail(long_trail, carol, query):
    response = client_for(carol).get(f"/audit/?{query}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>" not in page  # the page's own scripts are all <script src=...>
    assert "Audit trail" in page


def test_an_unknown_action_shows_no_events(long_trail, carol):
    page = client_for(carol).get("/audit/?action=no.such.action").content.decode()
    assert audit_rows(page) == []
    assert "No events." in page


def test_reading_the_trail_leaves_the_chain_intact(long_trail, bob):
    client = client_for(bob)
    client.get("/audit/")
    client.get("/audit/?page=2")
    assert verify_chain().intact
