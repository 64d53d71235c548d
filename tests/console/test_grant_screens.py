"""The grant screens as admins and auditors use them through the browser: the agents × tools
matrix, a grant's page, the grant form with its dry run against recorded calls, and revoking.

The database starts with the support desk's grants: sender → send_reply, sender →
issue_refund (amount at most 500 EUR, a person approves above 50) and research →
search_knowledge_base."""

import html
import re
from dataclasses import dataclass
from datetime import timedelta
from itertools import count
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from console.views import grants as grant_views
from orchestration.models import AuditEvent, Run, Ticket
from orchestration.services.workflows import ensure_workflow_version
from tests.conftest import client_for
from tests.console.test_approvals import messages_on, table_rows, textarea
from tools_registry.grants import GrantTerms, grant_tool
from tools_registry.models import Grant, Tool, ToolCall

# ---------------------------------------------------------------------------------------------
# Helpers


def refund_grant() -> Grant:
    return Grant.objects.get(agent="sender", tool__name="issue_refund", revoked_at__isnull=True)


def grant_of(agent: str, tool: str, *, reason: str = "Reads the ticket it drafts for.", **terms):
    return grant_tool(
        agent=agent,
        tool_id=Tool.objects.get(name=tool).pk,
        terms=GrantTerms(constraints=terms.pop("constraints", []), reason=reason, **terms),
        actor=None,
        actor_label="test",
    )


_keys = count(1)


def refund_call(amount: str, *, run: Run | None = None, reason: str = "Charged twice") -> ToolCall:
    """A recorded call of issue_refund by the sender, as the gate stores it."""
    return ToolCall.objects.create(
        run=run,
        agent="sender",
        tool="issue_refund",
        arguments={
            "ticket_id": 7,
            "run_id": run.pk if run else 1,
            "amount": amount,
            "currency": "EUR",
            "reason": reason,
        },
        idempotency_key=f"test-call-{next(_keys)}",
        decision="allow",
        status=ToolCall.Status.SUCCEEDED,
    )


def a_run() -> Run:
    workflow = ensure_workflow_version(
        definition={
            "name": "one_step",
            "start": "triage",
            "nodes": [
                {"name": "triage", "kind": "agent", "agent": "triage", "edges": [{"to": "end"}]}
            ],
        },
        config={},
    )
    ticket = Ticket.objects.create(customer_email="c@example.com", subject="s", body="b")
    return Run.objects.create(workflow=workflow, ticket=ticket)


def form_data(**overrides) -> dict[str, str]:
    """A complete new-grant form: drafter may read tickets, no approval."""
    data = {
        "agent": "drafter",
        "tool": "read_ticket",
        "constraints": "[]",
        "approval": "never",
        "approval_conditions": "[]",
        "expires_at": "",
        "reason": "Reads the ticket it drafts a reply for.",
    }
    data.update(overrides)
    return data


def edit_data(grant: Grant, **overrides) -> dict[str, str]:
    import json

    data = {
        "constraints": json.dumps(grant.constraints),
        "approval": grant.approval,
        "approval_conditions": json.dumps(grant.approval_conditions),
        "expires_at": "",
        "reason": grant.reason,
    }
    data.update(overrides)
    return data


def field_errors(page: str, name: str) -> list[str]:
    """The error messages shown right before the field ``name``."""
    block = re.search(rf'<div id="id_{name}_error">(.*?)</div>', page, re.S)
    if not block:
        return []
    return [html.unescape(m) for m in re.findall(r"<p class=\"field-error\">(.*?)</p>", block[1])]


def matrix_cell(page: str, agent: str, tool: str) -> dict:
    """The matrix cell of (agent, tool): its text and links."""
    tools = list(Tool.objects.order_by("name").values_list("name", flat=True))
    row = next(r for r in table_rows(page, "grant-matrix") if r["cells"][0] == agent)
    cell = re.search(
        rf'<td class="grant-cell[^"]*" data-agent="{agent}" data-tool="{tool}">(.*?)</td>',
        page,
        re.S,
    )
    return {"text": row["cells"][1 + tools.index(tool)], "html": cell[1]}


def grant_events() -> int:
    return AuditEvent.objects.filter(object_type="grant").count()


def grant_state() -> list[tuple]:
    """Everything about every grant that a screen could change."""
    return list(
        Grant.objects.order_by("pk").values_list(
            "pk",
            "agent",
            "tool__name",
            "constraints",
            "approval",
            "approval_conditions",
            "expires_at",
            "reason",
            "definition_hash",
            "revoked_at",
        )
    )


# ---------------------------------------------------------------------------------------------
# (a) Who may do what: each screen and action, persona by persona.


@dataclass(frozen=True)
class Expect:
    status: int
    location: str = ""
    shows: str = ""
    # For posts: what the grants look like afterwards.
    created: bool = False
    changed: bool = False
    revoked: bool = False


SHOWN = Expect(200)
DENIED = Expect(403, shows="Not allowed")
LOGIN = Expect(302, location="/login/?next={path}")
LOGIN_HOME = Expect(302, location="/login/?next=/")
REFUSED = Expect(403, shows="Not allowed")
CREATES = Expect(302, location="/grants/{new}/", created=True)
PREVIEWS = Expect(200, shows="Effect on recorded calls")
CHANGES = Expect(302, location="/grants/{grant}/", changed=True)
REVOKES = Expect(302, location="/grants/{grant}/", revoked=True)

PERSONAS = ("anonymous", "alice", "bob", "carol", "dave", "ivan")

# fmt: off
MATRIX: dict[str, tuple[Expect, ...]] = {
    #               anonymous    alice     bob       carol     dave      ivan
    #                            operator  admin     auditor   no role   integration
    "matrix":      (LOGIN,       DENIED,   SHOWN,    SHOWN,    DENIED,   DENIED),
    "detail":      (LOGIN,       DENIED,   SHOWN,    SHOWN,    DENIED,   DENIED),
    "new":         (LOGIN,       DENIED,   SHOWN,    DENIED,   DENIED,   DENIED),
    "create":      (LOGIN_HOME,  REFUSED,  CREATES,  REFUSED,  REFUSED,  REFUSED),
    "preview":     (LOGIN_HOME,  REFUSED,  PREVIEWS, REFUSED,  REFUSED,  REFUSED),
    "edit":        (LOGIN,       DENIED,   SHOWN,    DENIED,   DENIED,   DENIED),
    "change":      (LOGIN_HOME,  REFUSED,  CHANGES,  REFUSED,  REFUSED,  REFUSED),
    "revoke-page": (LOGIN,       DENIED,   SHOWN,    DENIED,   DENIED,   DENIED),
    "revoke":      (LOGIN_HOME,  REFUSED,  REVOKES,  REFUSED,  REFUSED,  REFUSED),
}
# fmt: on

SCREEN_URL_NAMES = {
    "matrix": "grants:matrix",
    "detail": "grants:detail",
    "new": "grants:new",
    "create": "grants:new",
    "preview": "grants:new",
    "edit": "grants:edit",
    "change": "grants:edit",
    "revoke-page": "grants:revoke",
    "revoke": "grants:revoke",
}


def _request(client: Client, screen: str, grant: Grant):
    match screen:
        case "matrix":
            return client.get("/grants/")
        case "detail":
            return client.get(f"/grants/{grant.pk}/")
        case "new":
            return client.get("/grants/new/?agent=drafter&tool=read_ticket")
        case "create":
            return client.post("/grants/new/", form_data())
        case "preview":
            return client.post("/grants/new/", form_data(preview="1"))
        case "edit":
            return client.get(f"/grants/{grant.pk}/edit/")
        case "change":
            limit = '[{"path": "amount", "op": "lte", "value": "300"}]'
            return client.post(f"/grants/{grant.pk}/edit/", edit_data(grant, constraints=limit))
        case "revoke-page":
            return client.get(f"/grants/{grant.pk}/revoke/")
        case "revoke":
            return client.post(f"/grants/{grant.pk}/revoke/", {"reason": "Refunds go by hand."})
    raise AssertionError(screen)


CASES = [
    pytest.param(screen, persona, expected, id=f"{screen}-{persona}")
    for screen, row in MATRIX.items()
    for persona, expected in zip(PERSONAS, row, strict=True)
]


@pytest.mark.parametrize(("screen", "persona", "expected"), CASES)
def test_each_persona_meets_what_the_role_matrix_says(request, db, screen, persona, expected):
    grant = refund_grant()
    client = Client() if persona == "anonymous" else client_for(request.getfixturevalue(persona))
    before = grant_state()

    response = _request(client, screen, grant)

    path = response.request["PATH_INFO"]
    assert resolve(path).view_name == SCREEN_URL_NAMES[screen]
    assert response.status_code == expected.status, f"{persona} on {screen}"
    after = grant_state()
    new = Grant.objects.exclude(pk__in=[row[0] for row in before]).first()
    if expected.location:
        query = response.request["QUERY_STRING"]
        asked = quote(path + (f"?{query}" if query else ""), safe="/")
        assert response["Location"] == expected.location.format(
            path=asked, grant=grant.pk, new=new.pk if new else ""
        )
    if expected.shows:
        assert expected.shows in response.content.decode()

    assert (new is not None) == expected.created
    if expected.created:
        assert (new.agent, new.tool.name, new.granted_by.username) == (
            "drafter",
            "read_ticket",
            persona,
        )
    grant.refresh_from_db()
    assert (grant.constraints != before[[r[0] for r in before].index(grant.pk)][3]) == (
        expected.changed
    )
    assert (grant.revoked_at is not None) == expected.revoked
    if not (expected.created or expected.changed or expected.revoked):
        assert after == before, f"{persona} on {screen} changed a grant"


def test_every_grant_screen_has_a_row_in_the_matrix():
    names = {f"grants:{pattern.name}" for pattern in grant_views.urlpatterns}
    assert names == set(SCREEN_URL_NAMES.values())
    assert set(MATRIX) == set(SCREEN_URL_NAMES)


@pytest.mark.parametrize(("persona", "shown"), [("bob", True), ("carol", True), ("alice", False)])
def test_the_navigation_links_the_matrix_for_those_who_may_read_it(request, db, persona, shown):
    page = client_for(request.getfixturevalue(persona)).get("/runs/").content.decode()
    nav = page.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    assert ('href="/grants/"' in nav) == shown


def test_a_post_without_the_csrf_token_changes_nothing(db, bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    grant = refund_grant()
    response = client.post(f"/grants/{grant.pk}/revoke/", {"reason": "no token"})
    assert response.status_code == 403
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_an_auditor_reads_the_matrix_and_a_grant_without_a_way_to_change_them(db, carol):
    client = client_for(carol)
    grant = refund_grant()
    matrix = client.get("/grants/").content.decode()
    assert "grant this" not in matrix
    assert "/grants/new/" not in matrix
    detail = client.get(f"/grants/{grant.pk}/").content.decode()
    assert f"/grants/{grant.pk}/edit/" not in detail
    assert f"/grants/{grant.pk}/revoke/" not in detail


# ---------------------------------------------------------------------------------------------
# The matrix


def test_each_cell_says_at_a_glance_what_the_agent_may_do(db, carol):
    page = client_for(carol).get("/grants/").content.decode()
    refund = matrix_cell(page, "sender", "issue_refund")["text"]
    assert refund.startswith("granted")
    assert 'ask when amount is above "50"' in refund
    assert 'amount is at most "500"' in refund
    assert 'currency is one of ["EUR"]' in refund
    assert "no expiry" in refund
    assert "review" not in refund
    reply = matrix_cell(page, "sender", "send_reply")["text"]
    assert "never ask" in reply and "no constraints" in reply
    assert matrix_cell(page, "drafter", "issue_refund")["text"] == "not granted"
    # Every registered agent has a row, every tool a column.
    agents = [row["cells"][0] for row in table_rows(page, "grant-matrix")]
    assert agents == ["triage", "research", "drafter", "decider", "sender"]
    for tool in Tool.objects.all():
        assert f'data-tool="{tool.name}"' in page


def test_a_granted_cell_links_the_grant_and_an_empty_one_offers_admins_a_prefilled_form(db, bob):
    client = client_for(bob)
    page = client.get("/grants/").content.decode()
    granted = matrix_cell(page, "sender", "issue_refund")["html"]
    assert f'href="/grants/{refund_grant().pk}/"' in granted
    empty = matrix_cell(page, "drafter", "read_ticket")["html"]
    assert 'href="/grants/new/?agent=drafter&amp;tool=read_ticket"' in empty

    form = client.get("/grants/new/?agent=drafter&tool=read_ticket").content.decode()
    assert re.search(r'<option value="drafter" selected>', form)
    assert re.search(r'<option value="read_ticket" selected>', form)
    assert 'name="preview"' in form and "Preview effect" in form
    # The operators are explained beside the JSON boxes.
    assert "<code>lte</code></dt><dd>is at most</dd>" in form
    assert "<code>host_in</code></dt><dd>has its host in</dd>" in form


def test_the_matrix_scrolls_inside_its_own_container(db, carol):
    page = client_for(carol).get("/grants/").content.decode()
    assert re.search(r'<div class="table-scroll[^"]*">\s*<table class="grant-matrix">', page)
    assert 'href="/static/console/grants.css"' in page
    with open("static/console/grants.css") as css:
        rules = css.read()
    assert ".grant-matrix { width: max-content;" in rules


# (f)
def test_a_grant_expiring_within_the_review_window_is_flagged_and_one_later_is_not(db, carol):
    now = timezone.now()
    soon = grant_of("drafter", "read_ticket", expires_at=now + timedelta(days=3))
    later = grant_of("research", "read_ticket", expires_at=now + timedelta(days=30))
    page = client_for(carol).get("/grants/").content.decode()

    flagged = matrix_cell(page, "drafter", "read_ticket")["text"]
    assert "review" in flagged
    assert f"expires {timezone.localtime(soon.expires_at):%Y-%m-%d %H:%M}" in flagged
    unflagged = matrix_cell(page, "research", "read_ticket")["text"]
    assert "review" not in unflagged
    assert f"expires {timezone.localtime(later.expires_at):%Y-%m-%d %H:%M}" in unflagged

    review = table_rows(page, "review-list")
    assert [(r["cells"][0], r["cells"][1], r["cells"][2]) for r in review] == [
        ("drafter", "read_ticket", "expires soon")
    ]
    assert f"/grants/{soon.pk}/" in review[0]["links"]


def test_a_grant_for_a_changed_tool_definition_is_flagged_until_an_admin_saves_it(db, bob):
    grant = refund_grant()
    Tool.objects.filter(pk=grant.tool_id).update(definition_hash="f" * 64)
    client = client_for(bob)
    page = client.get("/grants/").content.decode()
    assert "review" in matrix_cell(page, "sender", "issue_refund")["text"]
    (row,) = table_rows(page, "review-list")
    assert row["cells"][2] == "the tool's definition changed since it was granted"
    detail = client.get(f"/grants/{grant.pk}/").content.decode()
    assert "f" * 64 in detail and grant.definition_hash in detail
    assert "no longer covers it" in detail

    response = client.post(f"/grants/{grant.pk}/edit/", edit_data(grant))
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.definition_hash == "f" * 64
    page = client.get("/grants/").content.decode()
    assert "review" not in matrix_cell(page, "sender", "issue_refund")["text"]
    assert table_rows(page, "review-list") == [{"cells": ["Nothing to review."], "links": []}]


# ---------------------------------------------------------------------------------------------
# (b) Granting


def test_an_admin_grants_a_tool_with_a_constraint_and_an_approval_condition(db, bob):
    client = client_for(bob)
    expires = timezone.localtime() + timedelta(days=20)
    response = client.post(
        "/grants/new/",
        form_data(
            agent="sender",
            tool="post_webhook",
            constraints='[{"path": "url", "op": "host_in", "value": ["hooks.example.com"]}]',
            approval="when",
            approval_conditions='[{"path": "event", "op": "eq", "value": "refund"}]',
            expires_at=expires.strftime("%Y-%m-%dT%H:%M"),
            reason="Tells the billing system about refunds.",
            save="1",
        ),
    )

    grant = Grant.objects.get(agent="sender", tool__name="post_webhook")
    assert response.status_code == 302
    assert response["Location"] == f"/grants/{grant.pk}/"
    assert grant.definition_hash == Tool.objects.get(name="post_webhook").definition_hash
    assert grant.constraints == [{"path": "url", "op": "host_in", "value": ["hooks.example.com"]}]
    assert grant.approval == "when"
    assert grant.approval_conditions == [{"path": "event", "op": "eq", "value": "refund"}]
    assert grant.expires_at == expires.replace(second=0, microsecond=0)
    assert grant.granted_by == bob
    event = AuditEvent.objects.get(action="grant.created", object_id=str(grant.pk))
    assert (event.object_type, event.actor, event.after["approval"]) == ("grant", bob, "when")

    page = client.get(response["Location"]).content.decode()
    assert "sender may now call post_webhook." in messages_on(page)
    text = html.unescape(page)
    assert 'url has its host in ["hooks.example.com"]' in text
    assert 'ask when event equals "refund"' in text
    assert "Tells the billing system about refunds." in text
    assert "The same: the grant covers the tool as it is defined now." in text
    (history,) = table_rows(page, "grant-history")
    assert history["cells"][2:4] == ["bob", "grant.created"]


def test_editing_a_grant_changes_it_in_place_with_its_history(db, bob):
    grant = refund_grant()
    client = client_for(bob)
    form = client.get(f"/grants/{grant.pk}/edit/").content.decode()
    assert '"value": "500"' in textarea(form, "constraints")
    assert re.search(r'value="when"[^>]*checked', form)

    response = client.post(
        f"/grants/{grant.pk}/edit/",
        edit_data(grant, approval="always", reason="Every refund is checked this month."),
    )
    assert response.status_code == 302
    grant.refresh_from_db()
    assert grant.approval == "always"
    page = client.get(f"/grants/{grant.pk}/").content.decode()
    assert "always ask" in page
    actions = [row["cells"][3] for row in table_rows(page, "grant-history")]
    assert actions == ["grant.created", "grant.changed"]


def test_a_second_grant_of_the_same_tool_to_the_same_agent_is_refused_beside_the_agent(db, bob):
    response = client_for(bob).post(
        "/grants/new/", form_data(agent="sender", tool="issue_refund", save="1")
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert field_errors(page, "agent") == ["sender already holds issue_refund; edit that grant."]
    assert f'href="/grants/{refund_grant().pk}/edit/"' in page
    assert Grant.objects.filter(agent="sender", tool__name="issue_refund").count() == 1


# ---------------------------------------------------------------------------------------------
# (c) Mistakes are shown beside their field, nothing is saved and everything typed is kept.


@pytest.mark.parametrize(
    ("field", "typed", "message", "button"),
    [
        (
            "constraints",
            '[{"path": "ticket_id", "op": "lte", "value": 5',
            "This is not valid JSON: Expecting ',' delimiter (line 1, column 47).",
            "save",
        ),
        (
            "constraints",
            '{"path": "ticket_id", "op": "lte", "value": 5}',
            'Write a list: [{"path": …, "op": …, "value": …}, …], or [] for none.',
            "save",
        ),
        (
            "constraints",
            '[{"path": "ticket_id", "op": "below", "value": 5}]',
            "constraint 1: unknown op 'below' (one of eq, ne, lt, lte, gt, gte, in, not_in, "
            "host_in, keys_in)",
            "save",
        ),
        (
            "constraints",
            '[{"path": "ticket_id", "op": "below", "value": 5}]',
            "constraint 1: unknown op 'below' (one of eq, ne, lt, lte, gt, gte, in, not_in, "
            "host_in, keys_in)",
            "preview",
        ),
        ("approval_conditions", "", "“When” needs at least one condition.", "save"),
        ("approval_conditions", "[]", "“When” needs at least one condition.", "preview"),
        ("expires_at", "2001-01-01T10:00", "The expiry is in the past.", "save"),
        ("expires_at", "next tuesday", "Enter a date and time.", "save"),
    ],
)
def test_a_mistake_is_shown_beside_its_field_and_nothing_is_saved(
    db, bob, field, typed, message, button
):
    before, events = grant_state(), grant_events()
    data = form_data(
        constraints='[{"path": "ticket_id", "op": "lte", "value": 900}]',
        approval="when",
        approval_conditions='[{"path": "ticket_id", "op": "gt", "value": 100}]',
        reason="Reads <the> ticket.",
    )
    data.update({field: typed, button: "1"})
    response = client_for(bob).post("/grants/new/", data)

    assert response.status_code == 400
    page = response.content.decode()
    assert field_errors(page, field) == [message]
    assert 'aria-invalid="true"' in re.search(rf'<[^>]*name="{field}"[^>]*>', page)[0]
    assert grant_state() == before
    assert grant_events() == events
    for name in ("constraints", "approval_conditions", "reason"):
        assert textarea(page, name).strip() == data[name].strip()
    assert re.search(rf'name="expires_at" value="{re.escape(data["expires_at"])}"', page) or (
        not data["expires_at"]
    )
    assert re.search(r'<option value="drafter" selected>', page)
    assert re.search(r'value="when"[^>]*checked', page)
    assert 'id="dry-run"' not in page


def test_every_mistake_of_one_form_is_shown_at_once(db, bob):
    response = client_for(bob).post(
        "/grants/new/",
        form_data(
            agent="",
            constraints='[{"path": "amount", "op": "lte", "value": "a lot"}]',
            approval_conditions='[{"path": "", "op": "eq", "value": 1}]',
            reason="  ",
            save="1",
        ),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert field_errors(page, "agent") == ["Choose the agent."]
    assert field_errors(page, "constraints") == ["constraint 1: lte needs a number"]
    assert field_errors(page, "approval_conditions") == [
        "constraint 1: path must be a dotted argument name"
    ]
    assert field_errors(page, "reason") == ["Say why the agent needs this tool."]
    assert not Grant.objects.filter(agent="drafter").exists()


# ---------------------------------------------------------------------------------------------
# (d) The dry run


def test_a_preview_lists_exactly_the_recorded_calls_whose_decision_changes(db, bob):
    grant = refund_grant()
    run = a_run()
    small = refund_call("30", run=run)
    refund_call("80")
    ToolCall.objects.create(
        agent="research", tool="issue_refund", arguments={}, idempotency_key="other-agent"
    )
    before, events = grant_state(), grant_events()

    response = client_for(bob).post(
        f"/grants/{grant.pk}/edit/",
        edit_data(
            grant,
            approval_conditions='[{"path": "amount", "op": "gt", "value": "20"}]',
            preview="1",
        ),
    )

    assert response.status_code == 200
    page = response.content.decode()
    (row,) = table_rows(page, "dry-run")
    assert row["cells"][3] == "allow → ask"
    assert '"amount": "30"' in row["cells"][2]
    assert f"/runs/{run.pk}/" in row["links"]
    assert row["cells"][0] == f"{timezone.localtime(small.started_at):%Y-%m-%d %H:%M:%S %Z}"
    text = html.unescape(page)
    assert "Of the last 2 recorded calls of issue_refund by sender, 1 would be decided" in text
    # Nothing was saved, and the form still holds the proposal to save.
    assert grant_state() == before
    assert grant_events() == events
    assert '"value": "20"' in textarea(page, "approval_conditions")


def test_a_preview_that_changes_nothing_says_so(db, bob):
    grant = refund_grant()
    refund_call("30")
    response = client_for(bob).post(
        f"/grants/{grant.pk}/edit/", edit_data(grant, reason="Same terms.", preview="1")
    )
    assert response.status_code == 200
    assert table_rows(response.content.decode(), "dry-run") == []
    assert "None of the last 1 recorded call of issue_refund by sender would be decided" in (
        html.unescape(response.content.decode())
    )
    assert refund_grant().reason != "Same terms."


def test_a_preview_of_a_new_grant_compares_with_no_grant_at_all(db, bob):
    response = client_for(bob).post("/grants/new/", form_data(preview="1"))
    assert response.status_code == 200
    assert "drafter has no recorded calls of read_ticket" in response.content.decode()
    assert not Grant.objects.filter(agent="drafter").exists()


# ---------------------------------------------------------------------------------------------
# (e) Revoking


def test_revoking_needs_a_reason_and_shows_the_calls_that_would_be_refused(db, bob):
    grant = refund_grant()
    refund_call("30")
    refund_call("80")
    refund_call("900")  # refused already: unchanged
    client = client_for(bob)

    confirm = client.get(f"/grants/{grant.pk}/revoke/").content.decode()
    assert sorted(r["cells"][3] for r in table_rows(confirm, "dry-run")) == [
        "allow → deny",
        "ask → deny",
    ]

    response = client.post(f"/grants/{grant.pk}/revoke/", {"reason": " "})
    assert response.status_code == 400
    assert field_errors(response.content.decode(), "reason") == ["Say why the grant is revoked."]
    assert len(table_rows(response.content.decode(), "dry-run")) == 2
    grant.refresh_from_db()
    assert grant.revoked_at is None


def test_a_revoked_grant_is_shown_revoked_and_leaves_the_matrix(db, bob):
    grant = refund_grant()
    client = client_for(bob)
    response = client.post(f"/grants/{grant.pk}/revoke/", {"reason": "Refunds go by hand now."})

    assert response.status_code == 302
    assert response["Location"] == f"/grants/{grant.pk}/"
    grant.refresh_from_db()
    assert grant.revoked_at is not None and grant.revoked_by == bob
    assert grant.revoke_reason == "Refunds go by hand now."
    event = AuditEvent.objects.get(action="grant.revoked", object_id=str(grant.pk))
    assert event.actor == bob

    page = client.get(response["Location"]).content.decode()
    assert "Revoked: sender's next call of issue_refund is refused." in messages_on(page)
    assert '<span class="pill grant-revoked">revoked</span>' in page
    assert "Refunds go by hand now." in page
    assert f"/grants/{grant.pk}/edit/" not in page
    assert [r["cells"][3] for r in table_rows(page, "grant-history")] == [
        "grant.created",
        "grant.revoked",
    ]
    matrix = client.get("/grants/").content.decode()
    assert matrix_cell(matrix, "sender", "issue_refund")["text"] == "not granted grant this"
    assert f"/grants/{grant.pk}/" not in matrix

    # A revoked grant cannot be edited or revoked again; the tool can be granted anew.
    edit = client.get(f"/grants/{grant.pk}/edit/", follow=True)
    assert "This grant was revoked; grant the tool anew." in messages_on(edit.content.decode())
    again = client.post(f"/grants/{grant.pk}/revoke/", {"reason": "twice"}, follow=True)
    assert "This grant is already revoked." in messages_on(again.content.decode())
    grant.refresh_from_db()
    assert grant.revoke_reason == "Refunds go by hand now."
    anew = client.post("/grants/new/", form_data(agent="sender", tool="issue_refund"))
    assert anew.status_code == 302


# ---------------------------------------------------------------------------------------------
# (g) Untrusted text


def test_reasons_constraints_and_recorded_arguments_are_escaped(db, bob):
    script = "<script>alert(1)</script>"
    grant = grant_of(
        "drafter",
        "read_ticket",
        reason=f"Because {script}",
        constraints=[{"path": "ticket_id", "op": "in", "value": [script]}],
    )
    refund_call("30", reason=f"Refund {script}")
    client = client_for(bob)
    pages = [
        client.get("/grants/").content.decode(),
        client.get(f"/grants/{grant.pk}/").content.decode(),
        client.get(f"/grants/{grant.pk}/edit/").content.decode(),
        client.get(f"/grants/{refund_grant().pk}/revoke/").content.decode(),
        client.post(
            "/grants/new/", form_data(reason=script, constraints=f'["{script}"', save="1")
        ).content.decode(),
    ]
    for page in pages:
        assert script not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("screen", ["matrix", "detail", "new", "edit", "revoke-page"])
def test_grant_pages_rely_on_no_inline_script_or_style(db, bob, screen):
    response = _request(client_for(bob), screen, refund_grant())
    assert response.status_code == 200
    page = response.content.decode()
    for chunk in page.split("<script")[1:]:
        assert "src=" in chunk.split(">", 1)[0], f"inline <script> on {screen}"
    assert "<style" not in page and " style=" not in page
    assert " onclick=" not in page and " onload=" not in page
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
