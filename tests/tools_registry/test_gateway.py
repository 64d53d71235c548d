"""The tool gateway: a call is recorded before it runs and executed at most once per key."""

import pytest

from tools_registry import builtin
from tools_registry.builtin import BuiltinTool
from tools_registry.gateway import ToolDenied, ToolOutcomeUnknown, call_tool
from tools_registry.models import ToolCall

SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "integer", "minimum": 1}},
    "required": ["amount"],
    "additionalProperties": False,
}


@pytest.fixture
def ledger(monkeypatch):
    """A write tool that counts how often it really acts."""
    acted = []

    def pay(arguments, key):
        acted.append((arguments["amount"], key))
        return {"paid": arguments["amount"]}

    def register(idempotent: bool):
        monkeypatch.setitem(
            builtin.BUILTIN_TOOLS,
            "pay",
            BuiltinTool("pay", "Pay out", "write", SCHEMA, pay, idempotent=idempotent),
        )

    register(True)
    return acted, register


def test_a_repeated_call_reuses_the_recorded_result(db, ledger):
    acted, _ = ledger
    first = call_tool(name="pay", agent="test", arguments={"amount": 5}, idempotency_key="k1")
    again = call_tool(name="pay", agent="test", arguments={"amount": 5}, idempotency_key="k1")
    assert first == {"paid": 5, "replayed": False}
    assert again == {"paid": 5, "replayed": True}
    assert acted == [(5, "k1")]
    call = ToolCall.objects.get(idempotency_key="k1")
    assert (call.status, call.result, call.attempts) == ("succeeded", {"paid": 5}, 1)


def test_a_call_cut_short_is_finished_only_if_the_tool_is_idempotent(db, ledger):
    acted, register = ledger
    ToolCall.objects.create(idempotency_key="k2", agent="test", tool="pay", arguments={"amount": 7})
    assert (
        call_tool(name="pay", agent="test", arguments={"amount": 7}, idempotency_key="k2")["paid"]
        == 7
    )
    assert ToolCall.objects.get(idempotency_key="k2").attempts == 2
    register(False)
    ToolCall.objects.create(idempotency_key="k3", agent="test", tool="pay", arguments={"amount": 9})
    with pytest.raises(ToolOutcomeUnknown, match="outcome is unknown"):
        call_tool(name="pay", agent="test", arguments={"amount": 9}, idempotency_key="k3")
    assert acted == [(7, "k2")]


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("refund_everything", {"amount": 1}, "unknown tool 'refund_everything'"),
        ("pay", {"amount": 0}, "amount: 0 is less than the minimum of 1"),
        ("pay", {"amount": 1, "to": "me"}, "Additional properties are not allowed"),
    ],
)
def test_a_refused_call_is_recorded_and_never_executed(db, ledger, name, arguments, message):
    acted, _ = ledger
    with pytest.raises(ToolDenied, match=message):
        call_tool(name=name, agent="test", arguments=arguments, idempotency_key="k4")
    call = ToolCall.objects.get(idempotency_key="k4")
    assert call.status == "denied" and message in call.error
    assert acted == []


def test_a_tool_that_raises_is_recorded_as_failed(db, monkeypatch):
    def broken(arguments, key):
        raise ConnectionError("ledger offline")

    monkeypatch.setitem(
        builtin.BUILTIN_TOOLS, "pay", BuiltinTool("pay", "Pay", "write", SCHEMA, broken)
    )
    with pytest.raises(ConnectionError):
        call_tool(name="pay", agent="test", arguments={"amount": 3}, idempotency_key="k5")
    call = ToolCall.objects.get(idempotency_key="k5")
    assert call.status == "failed" and "ledger offline" in call.error


def test_a_call_for_a_run_a_person_cancelled_meanwhile_is_not_made(run_ticket, ledger, alice):
    from orchestration.services.controls import cancel_run
    from tests.orchestration.test_runs import SECURITY
    from tools_registry.gateway import RunNotActive

    acted, _ = ledger
    run = run_ticket(**SECURITY)  # waits for a person
    cancel_run(run_id=run.pk, actor=alice, reason="handled by phone")
    with pytest.raises(RunNotActive, match="was not called"):
        call_tool(
            name="pay", agent="test", arguments={"amount": 5}, idempotency_key="k", run_id=run.pk
        )
    assert acted == [] and not ToolCall.objects.exists()
