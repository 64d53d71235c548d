"""The gate: each check in its order with its reason, every refusal a recorded violation, and
a call recorded before it runs and executed at most once per key."""

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone

from orchestration.models import AuditEvent
from orchestration.services.audit import verify_chain
from tools_registry import builtin
from tools_registry.builtin import BuiltinTool
from tools_registry.catalog import set_tool_enabled, sync_builtin_tools
from tools_registry.gateway import (
    ApprovalRequired,
    CircuitOpen,
    InvalidToolOutput,
    RateLimited,
    RunNotActive,
    ToolDenied,
    ToolOutcomeUnknown,
    call_tool,
)
from tools_registry.grants import GrantTerms, grant_tool, revoke_grant
from tools_registry.models import PolicyViolation, Tool, ToolApproval, ToolBreaker, ToolCall

SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
        "to": {"type": "string"},
    },
    "required": ["amount"],
    "additionalProperties": False,
}
OUTPUT = {
    "type": "object",
    "properties": {"paid": {"type": "string"}},
    "required": ["paid"],
    "additionalProperties": False,
}


@pytest.fixture(
    params=[
        pytest.param("one statement", marks=pytest.mark.django_db(transaction=True)),
        pytest.param("orm", marks=pytest.mark.django_db),
    ]
)
def gate_path(request, settings):
    """Each test runs against the gate's single-statement path (outside a transaction, as on
    a worker) and its ORM path."""
    from django.db import connection

    from orchestration.services import statements

    one_statement = request.param == "one statement"
    settings.ENGINE_SINGLE_STATEMENT_WRITES = one_statement
    assert (
        statements.enabled() is one_statement
        and not connection.in_atomic_block
        or (not one_statement)
    )
    return request.param


@pytest.fixture
def ledger(gate_path, monkeypatch, admin_user):
    """A payment tool, granted to agent "clerk": up to 100, a person approves above 50."""
    acted = []

    def pay(arguments, key):
        acted.append((arguments["amount"], key))
        return {"paid": arguments["amount"]}

    def register(idempotent=True, handler=pay):
        monkeypatch.setitem(
            builtin.BUILTIN_TOOLS,
            "pay",
            BuiltinTool(
                name="pay",
                title="Pay",
                description="Pay out money.",
                risk="irreversible",
                input_schema=SCHEMA,
                output_schema=OUTPUT,
                handler=handler,
                idempotent=idempotent,
            ),
        )
        sync_builtin_tools()
        return Tool.objects.get(name="pay")

    tool = register()
    grant = grant_tool(
        agent="clerk",
        tool_id=tool.pk,
        terms=GrantTerms(
            constraints=[{"path": "amount", "op": "lte", "value": "100"}],
            approval="when",
            approval_conditions=[{"path": "amount", "op": "gt", "value": "50"}],
            reason="pays small sums",
        ),
        actor=admin_user,
    )
    return acted, register, grant


def pay(amount="5", key="k1", agent="clerk", **extra):
    return call_tool(
        name="pay", agent=agent, arguments={"amount": amount, **extra}, idempotency_key=key
    )


def refused(check, **call):
    """Call, expect a refusal by ``check``, and return its reason."""
    with pytest.raises(ToolDenied) as denied:
        pay(**call)
    assert denied.value.check == check
    violation = PolicyViolation.objects.get(idempotency_key=call.get("key", "k1"))
    assert violation.failed_check == check and violation.reason == str(denied.value)
    record = ToolCall.objects.get(idempotency_key=call.get("key", "k1"))
    assert (record.status, record.decision) == ("denied", "deny")
    return str(denied.value)


def test_an_allowed_call_runs_once_and_is_on_the_audit_trail(ledger, gate_path):
    acted, _, _ = ledger
    assert pay("5") == {"paid": "5", "replayed": False}
    assert pay("5") == {"paid": "5", "replayed": True}
    assert acted == [("5", "k1")]
    call = ToolCall.objects.get(idempotency_key="k1")
    assert (call.status, call.result, call.decision) == ("succeeded", {"paid": "5"}, "allow")
    event = AuditEvent.objects.get(action="tool.called")
    assert event.object_id == str(call.pk) and event.after["tool"] == "pay"
    assert verify_chain().intact


def test_an_unknown_tool_is_refused(ledger, gate_path):
    with pytest.raises(ToolDenied, match="unknown tool 'refund_everything'"):
        call_tool(name="refund_everything", agent="clerk", arguments={}, idempotency_key="k1")
    assert PolicyViolation.objects.get().failed_check == "unknown_tool"


def test_the_kill_switch_refuses_the_next_call(ledger, gate_path, admin_user):
    acted, _, grant = ledger
    pay("5", key="before")
    set_tool_enabled(tool_id=grant.tool_id, enabled=False, actor=admin_user, reason="incident")
    assert "switched off" in refused("disabled", key="after")
    assert AuditEvent.objects.filter(action="tool.disabled").count() == 1
    assert len(acted) == 1


def test_an_agent_without_a_grant_is_refused(ledger, gate_path):
    assert "holds no grant for pay" in refused("no_grant", agent="intruder")


def test_a_revoked_grant_refuses_the_next_call(ledger, gate_path, admin_user):
    _, _, grant = ledger
    pay("5", key="before")
    revoke_grant(grant_id=grant.pk, actor=admin_user, reason="no longer needed")
    refused("no_grant", key="after")


def test_an_expired_grant_is_refused(ledger, gate_path):
    _, _, grant = ledger
    type(grant).objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(1))
    assert "expired" in refused("grant_expired")


def test_a_grant_does_not_extend_to_a_changed_definition(ledger, gate_path):
    _, _, grant = ledger
    Tool.objects.filter(pk=grant.tool_id).update(definition_hash="0" * 64)
    assert "definition changed" in refused("definition_changed")


def test_a_changed_schema_is_the_one_checked_once_the_grant_is_renewed(
    ledger, gate_path, admin_user, monkeypatch
):
    """The gate keeps schemas per definition hash: a new definition brings its own."""
    from tools_registry.grants import change_grant

    _, _, grant = ledger
    assert pay("5")["paid"] == "5"  # the first schema, now kept by this process
    stricter = {**SCHEMA, "required": ["amount", "to"]}
    changed = dataclasses.replace(builtin.BUILTIN_TOOLS["pay"], input_schema=stricter)
    monkeypatch.setitem(builtin.BUILTIN_TOOLS, "pay", changed)
    sync_builtin_tools()
    assert "definition changed" in refused("definition_changed", key="k2")
    change_grant(
        grant_id=grant.pk,
        terms=GrantTerms(
            constraints=grant.constraints,
            approval=grant.approval,
            approval_conditions=grant.approval_conditions,
            reason="reviewed the new definition",
        ),
        actor=admin_user,
    )
    assert "'to' is a required property" in refused("invalid_arguments", key="k3")
    assert pay("5", key="k4", to="bob")["paid"] == "5"


@pytest.mark.django_db(transaction=True)
def test_a_call_that_is_not_idempotent_is_on_disk_before_the_tool_acts(
    monkeypatch, admin_user, settings
):
    """Its record's commit waits for the write-ahead log's flush, so a crash of the database
    server after the tool acted cannot lose the record and let the call run again."""
    from django.db import connection

    def wal_flushes() -> int:
        with connection.cursor() as cursor:  # make this backend report its counts now
            cursor.execute("SELECT pg_stat_force_next_flush()")
            cursor.execute("SELECT 1")
            cursor.execute("SELECT wal_sync FROM pg_stat_wal")
            return cursor.fetchone()[0]

    seen = []

    def pay_once(arguments, key):
        seen.append((ToolCall.objects.get(idempotency_key=key).status, wal_flushes()))
        return {"paid": arguments["amount"]}

    monkeypatch.setitem(
        builtin.BUILTIN_TOOLS,
        "pay",
        BuiltinTool(
            name="pay",
            title="Pay",
            description="Pay out money.",
            risk="irreversible",
            input_schema=SCHEMA,
            output_schema=OUTPUT,
            handler=pay_once,
            idempotent=False,
        ),
    )
    sync_builtin_tools()
    grant_tool(
        agent="clerk",
        tool_id=Tool.objects.get(name="pay").pk,
        terms=GrantTerms(constraints=[], reason="pays"),
        actor=admin_user,
    )
    before = wal_flushes()
    assert pay("5")["paid"] == "5"
    [(status, flushes_when_acting)] = seen
    assert status == "started" and flushes_when_acting > before


def test_arguments_outside_the_schema_are_refused(ledger, gate_path):
    assert "does not match" in refused("invalid_arguments", amount="five")


def test_arguments_outside_the_grants_constraints_are_refused(ledger, gate_path):
    assert 'amount is at most "100"' in refused("constraint", amount="100.01")


def test_the_rate_limit_refuses_calls_past_it_as_a_transient_error(ledger, gate_path, monkeypatch):
    # The limit counts calls per clock minute: hold the clock mid-minute so that
    # the three calls cannot straddle two minutes.
    moment = timezone.now().replace(second=30)
    monkeypatch.setattr(timezone, "now", lambda: moment)
    Tool.objects.filter(name="pay").update(rate_limit_per_minute=2)
    pay(key="a")
    pay(key="b")
    with pytest.raises(RateLimited) as limited:
        pay(key="c")
    assert limited.value.kind == "transient" and limited.value.check == "rate_limit"


def test_an_open_breaker_refuses_the_call(ledger, gate_path, settings):
    import time

    ToolBreaker.objects.create(tool="pay", state="open", opened_at=time.time())
    with pytest.raises(CircuitOpen):
        pay()
    assert PolicyViolation.objects.get().failed_check == "circuit_open"


def test_the_first_failing_check_is_the_one_reported(ledger, gate_path, admin_user):
    _, _, grant = ledger
    set_tool_enabled(tool_id=grant.tool_id, enabled=False, actor=admin_user, reason="x")
    # Also ungranted, invalid and over the limit: the kill switch comes first.
    refused("disabled", agent="intruder", amount="999999")


def test_a_call_over_the_approval_condition_waits_for_a_person(ledger, gate_path, admin_user):
    acted, _, _ = ledger
    with pytest.raises(ApprovalRequired) as asked:
        pay("80")
    approval = asked.value.approval
    assert (approval.status, approval.arguments) == ("pending", {"amount": "80"})
    assert "amount is above" in approval.reason
    with pytest.raises(ApprovalRequired):  # asked again, still the same approval
        pay("80")
    assert ToolApproval.objects.count() == 1 and acted == []
    ToolApproval.objects.filter(pk=approval.pk).update(status="approved")
    assert pay("80")["paid"] == "80"
    assert ToolApproval.objects.get().status == "used"
    assert ToolCall.objects.get(idempotency_key="k1").decision == "ask"
    with pytest.raises(ApprovalRequired):  # the approval was for that call only
        pay("80", key="k2")


def test_an_approval_is_bound_to_the_exact_call(ledger, gate_path):
    with pytest.raises(ApprovalRequired) as asked:
        pay("80")
    ToolApproval.objects.filter(pk=asked.value.approval.pk).update(status="approved")
    assert "not the one a person approved" in refused("approval_mismatch", amount="90")


@pytest.mark.parametrize(
    ("status", "check"), [("rejected", "approval_rejected"), ("expired", "approval_expired")]
)
def test_a_rejected_or_expired_approval_refuses_the_call(ledger, gate_path, status, check):
    with pytest.raises(ApprovalRequired) as asked:
        pay("80")
    ToolApproval.objects.filter(pk=asked.value.approval.pk).update(status=status)
    refused(check, amount="80")


def test_an_unanswered_approval_past_its_time_counts_as_expired(ledger, gate_path):
    with pytest.raises(ApprovalRequired) as asked:
        pay("80")
    ToolApproval.objects.filter(pk=asked.value.approval.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    refused("approval_expired", amount="80")


def test_an_approval_given_in_time_is_used_even_if_the_run_goes_on_later(ledger, gate_path):
    with pytest.raises(ApprovalRequired) as asked:
        pay("80")
    ToolApproval.objects.filter(pk=asked.value.approval.pk).update(
        status="approved", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert pay("80")["paid"] == "80"


def test_an_output_outside_the_tools_schema_is_refused(ledger, gate_path):
    _, register, _ = ledger
    register(handler=lambda arguments, key: {"paid": 5, "extra": True})
    with pytest.raises(InvalidToolOutput, match="answered outside its output schema"):
        pay()
    assert ToolCall.objects.get().status == "failed"
    assert PolicyViolation.objects.get().failed_check == "invalid_output"


def test_a_call_cut_short_is_finished_only_if_the_tool_is_idempotent(ledger, gate_path):
    acted, register, _ = ledger
    ToolCall.objects.create(idempotency_key="k2", agent="clerk", tool="pay", arguments={})
    assert pay("7", key="k2")["paid"] == "7"
    assert ToolCall.objects.get(idempotency_key="k2").attempts == 2
    register(idempotent=False)
    ToolCall.objects.create(idempotency_key="k3", agent="clerk", tool="pay", arguments={})
    with pytest.raises(ToolOutcomeUnknown, match="outcome is unknown"):
        pay("9", key="k3")
    assert acted == [("7", "k2")]


def test_a_tool_that_raises_is_recorded_as_failed(ledger, gate_path):
    def broken(arguments, key):
        raise ConnectionError("ledger offline")

    _, register, _ = ledger
    register(handler=broken)
    with pytest.raises(ConnectionError):
        pay("3")
    call = ToolCall.objects.get()
    assert call.status == "failed" and "ledger offline" in call.error


def test_a_call_for_a_run_a_person_cancelled_meanwhile_is_not_made(run_ticket, ledger, alice):
    from orchestration.services.controls import cancel_run
    from tests.orchestration.test_runs import SECURITY

    acted, _, _ = ledger
    run = run_ticket(**SECURITY)  # waits for a person
    cancel_run(run_id=run.pk, actor=alice, reason="handled by phone")
    with pytest.raises(RunNotActive, match="was not called"):
        call_tool(
            name="pay", agent="clerk", arguments={"amount": "5"}, idempotency_key="k", run_id=run.pk
        )
    assert acted == [] and not ToolCall.objects.filter(idempotency_key="k").exists()


def test_a_refusal_never_overwrites_a_call_that_may_have_acted(ledger, gate_path):
    acted, register, _ = ledger
    register(idempotent=False)
    ToolCall.objects.create(idempotency_key="k1", agent="clerk", tool="pay", arguments={})
    # This retry would also break the grant's limit; what may have happened comes first.
    with pytest.raises(ToolOutcomeUnknown):
        pay("100000")
    assert ToolCall.objects.get(idempotency_key="k1").status == "started"
    assert acted == []


def test_a_failed_call_of_a_tool_that_is_not_idempotent_is_not_repeated(ledger, gate_path):
    calls = []

    def times_out(arguments, key):
        calls.append(key)
        raise TimeoutError("no answer from the payment service")

    _, register, _ = ledger
    register(idempotent=False, handler=times_out)
    with pytest.raises(TimeoutError):
        pay("5")
    assert ToolCall.objects.get().status == "started", "it may have paid: outcome unknown"
    with pytest.raises(ToolOutcomeUnknown):
        pay("5")
    assert calls == ["k1"]


def test_a_replay_reads_only_what_the_agent_is_granted(ledger, gate_path):
    from tools_registry.gateway import dry_run

    with dry_run():
        found = call_tool(
            name="search_knowledge_base",
            agent="research",
            arguments={"query": "logo on invoices"},
            idempotency_key="r1",
        )
        refused = call_tool(
            name="search_knowledge_base",
            agent="clerk",
            arguments={"query": "logo on invoices"},
            idempotency_key="r2",
        )
    assert "articles" in found and refused == {"replayed": False, "executed": False}
    assert not ToolCall.objects.filter(idempotency_key__in=["r1", "r2"]).exists()


def test_a_grant_names_only_arguments_the_tool_has_and_binds_webhooks_to_hosts(
    ledger, gate_path, admin_user
):
    from tools_registry.grants import GrantError

    tool = Tool.objects.get(name="pay")
    with pytest.raises(GrantError, match="pay has no argument 'ammount'"):
        grant_tool(
            agent="other",
            tool_id=tool.pk,
            terms=GrantTerms(
                constraints=[{"path": "ammount", "op": "lte", "value": "5"}], reason="typo"
            ),
            actor=admin_user,
        )
    webhook = Tool.objects.get(name="post_webhook")
    with pytest.raises(GrantError, match="must be bound to hosts"):
        grant_tool(
            agent="notifier",
            tool_id=webhook.pk,
            terms=GrantTerms(constraints=[], reason="notify"),
            actor=admin_user,
        )
    grant_tool(
        agent="notifier",
        tool_id=webhook.pk,
        terms=GrantTerms(
            constraints=[{"path": "url", "op": "host_in", "value": ["hooks.example.com"]}],
            reason="notify the CRM",
        ),
        actor=admin_user,
    )
