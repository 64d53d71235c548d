"""The machine API as an integration sees it: POST /api/v1/tickets and GET /api/v1/runs/<id>.

Every refusal is checked twice: the response a client would read (status, the JSON error
shape {"error": ..., "fields": {...}}, which field is named) and the database, where nothing
may have been written."""

import json

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orchestration.engine.states import RunStatus
from orchestration.models import AuditEvent, Run, Ticket
from tests.conftest import client_for

TICKETS_URL = "/api/v1/tickets"
SCHEMA_URL = "/api/v1/schema"


def valid_ticket(**overrides):
    fields = {
        "subject": "How do I add my logo to invoices?",
        "body": "Hi, I'd like my company logo on the invoices I send. "
        "Where do I upload it? Thanks, Mia",
        "customer_email": "mia@example.com",
        "customer_name": "Mia Jensen",
    }
    fields.update(overrides)
    return fields


def written():
    """What an accepted ticket leaves behind; a refusal must leave all of it unchanged."""
    return {
        "tickets": Ticket.objects.count(),
        "runs": Run.objects.count(),
        "ingested events": AuditEvent.objects.filter(action="ticket.ingested").count(),
    }


@pytest.fixture
def token_for(db):
    def make(user):
        return Token.objects.get_or_create(user=user)[0].key

    return make


@pytest.fixture
def as_ivan(ivan_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ivan_token}")
    return client


@pytest.fixture
def api_as(token_for):
    def make(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token_for(user)}")
        return client

    return make


@pytest.fixture
def submit(as_ivan):
    """POST a JSON value as ivan."""

    def post(payload, client=None):
        return (client or as_ivan).post(TICKETS_URL, payload, format="json")

    return post


@pytest.fixture
def post_raw(ivan_token):
    """POST bytes exactly as given, as ivan, labelled as JSON."""

    def post(raw, content_type="application/json"):
        return Client().post(
            TICKETS_URL,
            raw,
            content_type=content_type,
            HTTP_AUTHORIZATION=f"Token {ivan_token}",
        )

    return post


def assert_refused_field(response, field, status=400):
    """The response is the API's validation error naming ``field``; returns its messages."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == "The request is invalid."
    assert field in body["fields"], body
    messages = body["fields"][field]
    assert isinstance(messages, list) and messages, body
    return " ".join(messages)


# --- Accepting a ticket --------------------------------------------------------------------


def test_a_valid_ticket_is_stored_and_its_run_is_worked_in_process(
    as_ivan, ivan, support_desk, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_ivan.post(TICKETS_URL, valid_ticket(external_id="crm-1001"), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"ticket_id", "run_id", "run_url"}
    ticket = Ticket.objects.get(pk=body["ticket_id"])
    assert ticket.subject == "How do I add my logo to invoices?"
    assert ticket.customer_email == "mia@example.com"
    assert ticket.customer_name == "Mia Jensen"
    assert ticket.external_id == "crm-1001"
    assert ticket.channel == "api"
    assert ticket.submitted_by == ivan
    assert ticket.known_category == "" and ticket.known_urgency == ""
    run = Run.objects.get(pk=body["run_id"])
    assert run.ticket == ticket
    assert body["run_url"] == f"/api/v1/runs/{run.pk}"
    assert run.status in {RunStatus.SUCCEEDED, RunStatus.WAITING_HUMAN}
    assert run.step_count > 0
    event = AuditEvent.objects.get(action="ticket.ingested", object_id=str(ticket.pk))
    assert event.actor == ivan
    assert event.actor_label == "api:ivan"
    assert event.object_type == "ticket"
    assert event.after == {"run": run.pk, "channel": "api", "external_id": "crm-1001"}


def test_a_ticket_without_optional_fields_is_accepted_with_defaults(submit):
    response = submit(
        {"subject": "Invoice", "body": "Where is my invoice?", "customer_email": "a@b.example"}
    )

    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get(pk=response.json()["ticket_id"])
    assert ticket.customer_name == ""
    assert ticket.external_id is None
    assert ticket.channel == "api"
    assert Run.objects.filter(ticket=ticket, status=RunStatus.QUEUED).count() == 1


def test_labels_sent_with_a_ticket_are_stored_as_known_category_and_urgency(submit):
    response = submit(valid_ticket(category="billing", urgency="high", channel="email"))

    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get(pk=response.json()["ticket_id"])
    assert (ticket.known_category, ticket.known_urgency) == ("billing", "high")
    assert ticket.channel == "email"


def test_tickets_without_an_external_id_never_collide(submit):
    first = submit(valid_ticket())
    second = submit(valid_ticket(external_id=None))

    assert (first.status_code, second.status_code) == (201, 201)
    assert Ticket.objects.filter(external_id__isnull=True).count() == 2


# --- Following a run -----------------------------------------------------------------------


def test_the_run_url_shows_the_submitter_its_run(submit, as_ivan):
    accepted = submit(valid_ticket()).json()

    response = as_ivan.get(accepted["run_url"])

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["run_id"] == accepted["run_id"]
    assert body["ticket_id"] == accepted["ticket_id"]
    assert body["status"] == RunStatus.QUEUED
    assert body["finished_at"] is None
    assert {"outcome", "step_count", "error", "created_at"} <= set(body)


def test_the_run_url_reports_the_finished_run(
    as_ivan, support_desk, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        accepted = as_ivan.post(TICKETS_URL, valid_ticket(), format="json").json()

    body = as_ivan.get(accepted["run_url"]).json()

    run = Run.objects.get(pk=accepted["run_id"])
    assert body["status"] == run.status
    assert body["status"] in {RunStatus.SUCCEEDED, RunStatus.WAITING_HUMAN}
    assert body["step_count"] == run.step_count > 0


def test_an_integration_cannot_read_a_run_someone_else_started(submit, as_ivan, api_as, bob):
    accepted = submit(valid_ticket(), client=api_as(bob))
    assert accepted.status_code == 201

    response = as_ivan.get(accepted.json()["run_url"])

    assert response.status_code == 404
    assert response.json() == {"error": "No such run."}


def test_an_integration_gets_404_for_a_run_that_does_not_exist(as_ivan, ivan):
    response = as_ivan.get("/api/v1/runs/999999")

    assert response.status_code == 404
    assert "error" in response.json()


def test_console_roles_can_read_any_run(submit, api_as, alice, carol):
    run_url = submit(valid_ticket()).json()["run_url"]

    for person in (alice, carol):
        response = api_as(person).get(run_url)
        assert response.status_code == 200, (person, response.content)
        assert response.json()["status"] == RunStatus.QUEUED


def test_an_operator_gets_404_for_a_run_that_does_not_exist(api_as, alice):
    response = api_as(alice).get("/api/v1/runs/999999")

    assert response.status_code == 404
    assert "error" in response.json()


def test_an_account_without_a_role_cannot_read_runs(submit, api_as, dave):
    run_url = submit(valid_ticket()).json()["run_url"]

    response = api_as(dave).get(run_url)

    assert response.status_code == 403
    assert response.json() == {"error": "This account may not read runs."}


def test_reading_a_run_requires_authentication(submit):
    run_url = submit(valid_ticket()).json()["run_url"]

    response = APIClient().get(run_url)

    assert response.status_code == 401
    assert "error" in response.json()


# --- Missing and malformed fields ----------------------------------------------------------


@pytest.mark.parametrize("field", ["subject", "body", "customer_email"])
def test_it_refuses_a_ticket_missing_a_required_field(submit, field):
    payload = valid_ticket()
    del payload[field]
    before = written()

    response = submit(payload)

    message = assert_refused_field(response, field)
    assert "required" in message
    assert set(response.json()["fields"]) == {field}
    assert written() == before


def test_it_names_every_missing_required_field_at_once(submit, ivan):
    before = written()

    response = submit({"customer_name": "Mia"})

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"subject", "body", "customer_email"}
    assert written() == before


def test_it_refuses_an_empty_object(submit, ivan):
    before = written()

    response = submit({})

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"subject", "body", "customer_email"}
    assert written() == before


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("subject", 42, "Must be a string, not int."),
        ("body", ["x"], "Must be a string, not list."),
        ("customer_name", {"first": "Mia"}, "Must be a string, not dict."),
        ("external_id", 1001, "Must be a string, not int."),
        ("channel", False, "Must be a string, not bool."),
    ],
)
def test_it_refuses_a_non_string_where_a_string_belongs(submit, field, value, expected):
    before = written()

    response = submit(valid_ticket(**{field: value}))

    assert assert_refused_field(response, field) == expected
    assert written() == before


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("customer_email", True, "Must be a string, not bool."),
        ("customer_email", 42, "Must be a string, not int."),
        ("category", 7, "Must be a string, not int."),
        ("category", ["billing"], "Must be a string, not list."),
        ("urgency", True, "Must be a string, not bool."),
    ],
)
def test_it_refuses_a_non_string_email_or_label_with_a_type_message(submit, field, value, expected):
    before = written()

    response = submit(valid_ticket(**{field: value}))

    assert assert_refused_field(response, field) == expected
    assert written() == before


@pytest.mark.parametrize("field", ["subject", "body", "customer_email"])
def test_it_refuses_null_for_a_required_field(submit, field):
    before = written()

    response = submit(valid_ticket(**{field: None}))

    assert "null" in assert_refused_field(response, field)
    assert written() == before


@pytest.mark.parametrize("field", ["subject", "body"])
def test_it_refuses_a_blank_subject_or_body(submit, field):
    before = written()

    response = submit(valid_ticket(**{field: "   "}))

    assert "blank" in assert_refused_field(response, field)
    assert written() == before


@pytest.mark.parametrize("email", ["not-an-email", "mia@", "@example.com", "mia example.com"])
def test_it_refuses_an_invalid_email(submit, email):
    before = written()

    response = submit(valid_ticket(customer_email=email))

    assert "valid email" in assert_refused_field(response, "customer_email")
    assert written() == before


@pytest.mark.parametrize(("field", "value"), [("category", "billingg"), ("urgency", "urgent")])
def test_it_refuses_an_unknown_label(submit, field, value):
    before = written()

    response = submit(valid_ticket(**{field: value}))

    message = assert_refused_field(response, field)
    assert "not a valid choice" in message and value in message
    assert written() == before


def test_it_refuses_an_unknown_field_and_names_it(submit, ivan):
    before = written()

    response = submit(valid_ticket(priority="p1", Subject="x"))

    assert response.status_code == 400
    assert response.json()["fields"] == {
        "Subject": ["Unknown field."],
        "priority": ["Unknown field."],
    }
    assert written() == before


def test_it_refuses_a_subject_over_200_characters(submit, ivan):
    before = written()

    response = submit(valid_ticket(subject="s" * 201))

    assert "200" in assert_refused_field(response, "subject")
    assert written() == before


def test_it_accepts_a_subject_of_exactly_200_characters(submit, ivan):
    response = submit(valid_ticket(subject="s" * 200))

    assert response.status_code == 201, response.content
    assert Ticket.objects.get().subject == "s" * 200


def test_it_refuses_a_body_over_its_field_limit_that_fits_the_request_limit(submit, ivan):
    before = written()

    response = submit(valid_ticket(body="b" * 20001))

    assert "20000" in assert_refused_field(response, "body")
    assert written() == before


def test_it_refuses_a_nul_character_instead_of_failing_in_the_database(submit, ivan):
    before = written()

    response = submit(valid_ticket(subject="logo\x00invoice"))

    assert_refused_field(response, "subject")
    assert written() == before


def test_it_refuses_a_lone_surrogate_instead_of_failing_in_the_database(post_raw, ivan):
    before = written()
    raw = json.dumps(valid_ticket()).replace('"Mia Jensen"', '"Mia \\ud800"')

    response = post_raw(raw)

    assert_refused_field(response, "customer_name")
    assert written() == before


# --- Bodies that are not one JSON object ---------------------------------------------------


@pytest.mark.parametrize(
    "raw", [json.dumps([valid_ticket()]), json.dumps("a ticket"), "42", "null"]
)
def test_it_refuses_json_that_is_not_an_object(post_raw, ivan, raw):
    before = written()

    response = post_raw(raw)

    assert response.status_code == 400, response.content
    assert response.json() == {"error": "The body must be a JSON object describing one ticket."}
    assert written() == before


@pytest.mark.parametrize("raw", ['{"subject": "x",', "subject=x", "{'subject': 'x'}", "NaN"])
def test_it_refuses_invalid_json(post_raw, ivan, raw):
    before = written()

    response = post_raw(raw)

    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert "not valid JSON" in body["error"]
    assert written() == before


def test_it_refuses_a_body_that_is_not_json_at_all(post_raw, ivan):
    before = written()

    response = post_raw("subject=x&body=y", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert "error" in response.json()
    assert written() == before


def test_it_refuses_a_request_over_a_megabyte_with_413(submit, ivan):
    before = written()

    response = submit(valid_ticket(body="b" * 1_100_000))

    assert response.status_code == 413, response.status_code
    assert response.json() == {
        "error": f"The body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes "
        "a ticket may have."
    }
    assert written() == before


def test_it_refuses_a_request_just_over_the_configured_limit_with_413(post_raw, ivan):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    raw = json.dumps(valid_ticket(body="")).replace('"body": ""', '"body": "' + "b" * limit + '"')
    assert len(raw.encode()) > limit
    before = written()

    response = post_raw(raw)

    assert response.status_code == 413
    assert written() == before


# --- Duplicates ----------------------------------------------------------------------------


def test_it_refuses_a_second_ticket_with_the_same_external_id_with_409(submit, ivan):
    first = submit(valid_ticket(external_id="crm-7"))
    assert first.status_code == 201
    before = written()

    response = submit(valid_ticket(external_id="crm-7", subject="Another subject"))

    assert response.status_code == 409
    body = response.json()
    assert "crm-7" in body["error"]
    assert body["fields"] == {"external_id": ["Already submitted."]}
    assert written() == before
    assert Ticket.objects.get(external_id="crm-7").pk == first.json()["ticket_id"]


def test_an_external_id_is_unique_across_submitters(submit, api_as, bob, ivan):
    assert submit(valid_ticket(external_id="crm-8"), client=api_as(bob)).status_code == 201
    before = written()

    response = submit(valid_ticket(external_id="crm-8"))

    assert response.status_code == 409
    assert written() == before


# --- Who may submit ------------------------------------------------------------------------


def test_it_refuses_a_request_without_a_token_with_401(ivan):
    before = written()

    response = APIClient().post(TICKETS_URL, valid_ticket(), format="json")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert set(response.json()) == {"error"}
    assert written() == before


@pytest.mark.parametrize(
    "header", ["Token not-a-real-token", "Token", "Token two words", "Bearer whatever"]
)
def test_it_refuses_a_bad_token_with_401(ivan_token, header):
    before = written()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.post(TICKETS_URL, valid_ticket(), format="json")

    assert response.status_code == 401, (header, response.content)
    assert "error" in response.json()
    assert written() == before


def test_it_refuses_the_token_of_a_deactivated_integration_with_401(as_ivan, ivan):
    ivan.is_active = False
    ivan.save()
    before = written()

    response = as_ivan.post(TICKETS_URL, valid_ticket(), format="json")

    assert response.status_code == 401
    assert written() == before


@pytest.mark.parametrize("persona", ["alice", "carol", "dave"])
def test_it_refuses_accounts_that_may_not_ingest_with_403(request, api_as, persona):
    user = request.getfixturevalue(persona)
    before = written()

    response = api_as(user).post(TICKETS_URL, valid_ticket(), format="json")

    assert response.status_code == 403
    assert response.json() == {"error": "This account may not submit tickets."}
    assert written() == before


def test_an_admin_token_may_ingest(api_as, bob):
    response = api_as(bob).post(TICKETS_URL, valid_ticket(), format="json")

    assert response.status_code == 201, response.content
    ticket = Ticket.objects.get(pk=response.json()["ticket_id"])
    assert ticket.submitted_by == bob
    assert AuditEvent.objects.get(action="ticket.ingested").actor == bob


def test_refusals_are_checked_before_the_body_is_validated(api_as, alice):
    # An account that may not submit learns nothing about what a valid ticket looks like.
    response = api_as(alice).post(TICKETS_URL, {"subject": 42}, format="json")

    assert response.status_code == 403
    assert "fields" not in response.json()


def test_it_refuses_other_methods_on_the_tickets_endpoint(as_ivan, ivan):
    response = as_ivan.get(TICKETS_URL)

    assert response.status_code == 405
    assert "error" in response.json()


# --- Session authentication and CSRF -------------------------------------------------------


def test_it_refuses_a_session_post_without_a_csrf_token(bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    before = written()

    response = client.post(TICKETS_URL, valid_ticket(), content_type="application/json")

    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    assert written() == before


def test_a_session_post_with_a_csrf_token_is_accepted(bob):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    client.get("/login/")  # the login page sets the CSRF cookie, as a browser would get it
    csrf = client.cookies[settings.CSRF_COOKIE_NAME].value

    response = client.post(
        TICKETS_URL, valid_ticket(), content_type="application/json", HTTP_X_CSRFTOKEN=csrf
    )

    assert response.status_code == 201, response.content
    assert Ticket.objects.get().submitted_by == bob


def test_a_logged_in_operator_is_refused_even_with_a_csrf_token(alice):
    client = client_for(alice)
    before = written()

    response = client.post(TICKETS_URL, valid_ticket(), content_type="application/json")

    assert response.status_code == 403
    assert written() == before


# --- The schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["ivan", "alice", "dave"])
def test_the_schema_describes_the_tickets_endpoint_to_signed_in_accounts(request, api_as, persona):
    response = api_as(request.getfixturevalue(persona)).get(SCHEMA_URL, {"format": "json"})

    assert response.status_code == 200, response.content
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "Switchboard API"
    assert "/api/v1/tickets" in schema["paths"]
    assert "post" in schema["paths"]["/api/v1/tickets"]
    assert "/api/v1/runs/{run_id}" in schema["paths"]
    ticket_input = schema["components"]["schemas"]["TicketInput"]
    assert set(ticket_input["required"]) == {"subject", "body", "customer_email"}
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_the_schema_is_served_as_openapi_yaml_by_default(as_ivan, ivan):
    response = as_ivan.get(SCHEMA_URL)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    assert response.content.startswith(b"openapi: 3.")
    assert b"  /api/v1/tickets:\n" in response.content


def test_the_schema_is_only_for_signed_in_accounts():
    response = APIClient().get(SCHEMA_URL, {"format": "json"})

    assert response.status_code == 401
    assert b"/api/v1/tickets" not in response.content
