"""The support desk's built-in tools: each does its work, and what it returns fits the schema
it publishes. Only the webhook's receiver, outside HTTP, is mocked."""

import hashlib
import hmac
import json
from decimal import Decimal

import httpx
import pytest
from django.db import IntegrityError, transaction
from jsonschema import Draft202012Validator

from orchestration.models import AuditEvent, Refund
from orchestration.services.refunds import RefundConflict
from tools_registry import builtin
from tools_registry.builtin import BUILTIN_TOOLS, WebhookFailed

pytestmark = pytest.mark.django_db


def fits(schema: dict, value: object) -> bool:
    return Draft202012Validator(schema).is_valid(value)


def call(name: str, arguments: dict, key: str = "key-1") -> dict:
    """Run a tool's handler as the gateway would, on arguments that fit its input schema,
    and check that its result fits its output schema."""
    tool = BUILTIN_TOOLS[name]
    Draft202012Validator(tool.input_schema).validate(arguments)
    result = tool.handler(arguments, key)
    Draft202012Validator(tool.output_schema).validate(result)
    return result


@pytest.mark.parametrize("name", sorted(BUILTIN_TOOLS))
def test_every_tool_publishes_valid_strict_schemas(name):
    tool = BUILTIN_TOOLS[name]
    assert tool.name == name and tool.title and tool.description
    assert tool.risk in ("read", "write", "irreversible")
    for schema in (tool.input_schema, tool.output_schema):
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and schema["additionalProperties"] is False


def test_search_finds_the_help_article_for_a_question(support_desk):
    result = call("search_knowledge_base", {"query": "The invoice PDF I exported is blank"})
    assert 1 <= len(result["articles"]) <= 3
    assert result["articles"][0]["slug"] == "pdf-export-blank"
    assert result["articles"][0]["category"] == "bug"
    scores = [a["score"] for a in result["articles"]]
    assert scores == sorted(scores, reverse=True)


def test_search_returns_at_most_the_limit_and_nothing_for_empty_words(support_desk):
    assert len(call("search_knowledge_base", {"query": "invoice", "limit": 1})["articles"]) == 1
    assert call("search_knowledge_base", {"query": "hi thanks"})["articles"] == []
    schema = BUILTIN_TOOLS["search_knowledge_base"].input_schema
    assert not fits(schema, {"query": "invoice", "limit": 11})
    assert not fits(schema, {"query": ""})


def test_read_ticket_shows_what_the_customer_sent(run_ticket):
    ticket = run_ticket().ticket
    result = call("read_ticket", {"ticket_id": ticket.pk})
    assert result["subject"] == "How do I add my logo to invoices?"
    assert result["customer_name"] == "Mia Jensen"
    assert (result["channel"], result["known_category"]) == ("api", "")


def test_reading_an_unknown_ticket_says_so():
    with pytest.raises(LookupError, match="there is no ticket 999999"):
        call("read_ticket", {"ticket_id": 999999})


def test_update_ticket_fields_changes_and_audits_only_what_differs(run_ticket):
    ticket = run_ticket().ticket
    ticket.refresh_from_db()  # the run has moved it on since it was ingested
    fields = {"category": "billing", "urgency": "high", "status": ticket.status}
    arguments = {"ticket_id": ticket.pk, "fields": fields}

    assert call("update_ticket_fields", arguments) == {
        "ticket_id": ticket.pk,
        "changed": ["category", "urgency"],
    }
    ticket.refresh_from_db()
    assert (ticket.known_category, ticket.known_urgency) == ("billing", "high")
    event = AuditEvent.objects.get(action="ticket.updated")
    assert event.object_id == str(ticket.pk)
    assert event.before == {"category": "", "urgency": ""}
    assert event.after == {"category": "billing", "urgency": "high"}

    # The same update again changes nothing and records nothing.
    assert call("update_ticket_fields", arguments)["changed"] == []
    assert AuditEvent.objects.filter(action="ticket.updated").count() == 1


@pytest.mark.parametrize(
    "fields",
    [{"assignee": "alice"}, {"category": "billing", "resolution": "done"}, {"urgency": "meh"}, {}],
)
def test_update_ticket_fields_refuses_other_fields_and_values_by_schema(fields):
    schema = BUILTIN_TOOLS["update_ticket_fields"].input_schema
    assert not fits(schema, {"ticket_id": 1, "fields": fields})


def test_updating_an_unknown_ticket_says_so():
    with pytest.raises(LookupError, match="there is no ticket 999999"):
        call("update_ticket_fields", {"ticket_id": 999999, "fields": {"status": "closed"}})


def refund_arguments(run, **overrides) -> dict:
    return {
        "ticket_id": run.ticket_id,
        "run_id": run.pk,
        "amount": "12.5",
        "currency": "EUR",
        "reason": "charged twice for March",
        **overrides,
    }


def test_a_refund_issued_twice_with_one_key_is_one_refund(run_ticket):
    run = run_ticket()
    first = call("issue_refund", refund_arguments(run), key="refund-1")
    again = call("issue_refund", refund_arguments(run), key="refund-1")
    assert first == again == {"refund_id": first["refund_id"], "amount": "12.50", "currency": "EUR"}
    refund = Refund.objects.get()
    assert (refund.amount, refund.ticket_id, refund.run_id) == (
        Decimal("12.50"),
        run.ticket_id,
        run.pk,
    )
    event = AuditEvent.objects.get(action="refund.issued")
    assert event.after["amount"] == "12.50" and event.object_id == str(refund.pk)


def test_a_key_reused_for_a_different_refund_is_refused(run_ticket):
    run = run_ticket()
    call("issue_refund", refund_arguments(run), key="refund-1")
    with pytest.raises(RefundConflict, match="differs in amount"):
        call("issue_refund", refund_arguments(run, amount="125.00"), key="refund-1")
    assert Refund.objects.get().amount == Decimal("12.50")


def test_a_refund_on_a_run_of_another_ticket_is_refused(run_ticket):
    run, other = run_ticket(), run_ticket(subject="Where is my invoice?")
    with pytest.raises(LookupError, match=f"no run {run.pk} of ticket {other.ticket_id}"):
        call("issue_refund", refund_arguments(run, ticket_id=other.ticket_id))
    assert not Refund.objects.exists()


def refund_arguments_for_schema() -> dict:
    return {"ticket_id": 1, "run_id": 1, "amount": "1", "currency": "EUR", "reason": "r"}


@pytest.mark.parametrize("amount", ["0", "0.00", "-5", "5.001", "1234567", "12,50", "1e3"])
def test_the_refund_schema_refuses_amounts_that_are_no_refund(amount):
    schema = BUILTIN_TOOLS["issue_refund"].input_schema
    assert not fits(schema, {**refund_arguments_for_schema(), "amount": amount})


@pytest.mark.parametrize("amount", [Decimal("0.00"), Decimal("-5.00")])
def test_the_database_refuses_a_refund_that_is_not_positive(run_ticket, amount):
    run = run_ticket()
    with pytest.raises(IntegrityError, match="refund_amount_positive"), transaction.atomic():
        Refund.objects.create(
            ticket_id=run.ticket_id,
            run_id=run.pk,
            amount=amount,
            currency="EUR",
            reason="testing the ledger",
            idempotency_key="refund-0",
        )


# post_webhook

SECRET = "whsec-for-tests"
HOOK = {"url": "https://hooks.example.com/switchboard", "event": "ticket.escalated"}


class Clock:
    """Stands in for the handler's monotonic clock and sleep: sleeping moves it on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(builtin, "sleep", clock.sleep)
    monkeypatch.setattr(builtin, "monotonic", lambda: clock.now)
    return clock


@pytest.fixture
def receiver(monkeypatch, settings):
    """The remote end: answers each request with the next of ``answers`` (a status code,
    or an exception to raise as the transport would); keeps the requests."""
    settings.WEBHOOK_SIGNING_SECRET = SECRET
    requests: list[httpx.Request] = []
    answers: list[int | Exception] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        next_answer = answers.pop(0)
        if isinstance(next_answer, Exception):
            raise next_answer
        return httpx.Response(next_answer)

    monkeypatch.setattr(
        builtin, "webhook_client", lambda: httpx.Client(transport=httpx.MockTransport(answer))
    )
    return requests, answers


def test_a_webhook_is_signed_so_the_receiver_can_verify_it(receiver, clock):
    requests, answers = receiver
    answers.append(204)
    payload = {"ticket": 7, "why": "legal threat", "tags": ["vip"]}

    result = call("post_webhook", {**HOOK, "payload": payload}, key="run:1:step:4:call:0")

    assert result == {"status_code": 204, "attempts": 1}
    (request,) = requests
    assert request.method == "POST" and str(request.url) == HOOK["url"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Switchboard-Event"] == "ticket.escalated"
    assert request.headers["X-Switchboard-Idempotency-Key"] == "run:1:step:4:call:0"
    assert json.loads(request.content) == payload
    timestamp = request.headers["X-Switchboard-Timestamp"]
    expected = hmac.new(
        SECRET.encode(), f"{timestamp}.{request.content.decode()}".encode(), hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["X-Switchboard-Signature"], f"sha256={expected}")


def test_a_busy_receiver_is_tried_again_after_a_pause(receiver, clock):
    requests, answers = receiver
    answers.extend([503, 200])
    assert call("post_webhook", {**HOOK, "payload": {}}) == {"status_code": 200, "attempts": 2}
    assert clock.sleeps == [0.2]
    assert requests[0].headers["X-Switchboard-Idempotency-Key"] == "key-1"
    assert requests[1].headers["X-Switchboard-Idempotency-Key"] == "key-1"


def test_an_unreachable_receiver_is_tried_again(receiver, clock):
    _, answers = receiver
    answers.extend([httpx.ConnectError("connection refused"), 429, 202])
    assert call("post_webhook", {**HOOK, "payload": {}}) == {"status_code": 202, "attempts": 3}
    assert clock.sleeps == [0.2, 0.4]


def test_after_three_failures_the_webhook_gives_up_as_transient(receiver, clock):
    requests, answers = receiver
    answers.extend([503, 500, 503])
    with pytest.raises(WebhookFailed, match="after 3 attempts: HTTP 503") as failed:
        call("post_webhook", {**HOOK, "payload": {}})
    assert (failed.value.kind, failed.value.attempts) == ("transient", 3)
    assert len(requests) == 3 and clock.sleeps == [0.2, 0.4]


def test_a_refused_webhook_fails_at_once_as_permanent(receiver, clock):
    requests, answers = receiver
    answers.extend([400, 200])
    with pytest.raises(
        WebhookFailed, match="refused the ticket.escalated webhook: HTTP 400"
    ) as failed:
        call("post_webhook", {**HOOK, "payload": {}})
    assert (failed.value.kind, failed.value.status_code) == ("permanent", 400)
    assert len(requests) == 1 and clock.sleeps == []


def test_the_retries_stay_within_the_tools_timeout(receiver, clock, monkeypatch):
    """A receiver that takes 0.45 s to answer 503, against a 1 s budget: the second attempt
    gets only what is left of the budget and times out, and no third one is started."""
    monkeypatch.setattr(builtin, "WEBHOOK_TIMEOUT_SECONDS", 1.0)
    requests = []

    def slow(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        allowed = request.extensions["timeout"]["read"]
        assert clock.now + allowed <= 1.0 + 1e-9
        if allowed < 0.45:
            clock.now += allowed
            raise httpx.ReadTimeout("timed out", request=request)
        clock.now += 0.45
        return httpx.Response(503)

    monkeypatch.setattr(
        builtin, "webhook_client", lambda: httpx.Client(transport=httpx.MockTransport(slow))
    )
    with pytest.raises(WebhookFailed, match="after 2 attempts: ReadTimeout") as failed:
        call("post_webhook", {**HOOK, "payload": {}})
    assert failed.value.kind == "transient"
    assert len(requests) == 2 and clock.sleeps == [0.2]
    assert clock.now <= 1.0 + 1e-9


@pytest.mark.parametrize(
    "hook",
    [
        {**HOOK, "url": "http://hooks.example.com/switchboard"},
        {**HOOK, "url": "https://"},
        {**HOOK, "url": "https://hooks.example.com/" + "x" * 2000},
        {**HOOK, "event": ""},
        {**HOOK, "event": "ticket escalated\r\nX-Injected: 1"},
        {"url": HOOK["url"], "payload": {}},
    ],
)
def test_the_webhook_schema_refuses_bad_urls_and_events(hook):
    schema = BUILTIN_TOOLS["post_webhook"].input_schema
    assert not fits(schema, {"payload": {}, **hook})
