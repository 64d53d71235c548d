"""A step's checkpoint on PostgreSQL (one statement, outside any transaction, as on a
worker) records exactly what the ORM path records, and writes nothing for a worker whose
claim or run moved on."""

from datetime import timedelta

import pytest
from django.utils import timezone

from orchestration.agents.base import AgentResult, ChildSpan
from orchestration.engine.states import RunStatus, StepStatus
from orchestration.models import Reply, Run, Span, Step, Ticket
from orchestration.services.runs import start_run
from orchestration.services.steps import complete_step
from orchestration.services.workflows import ensure_workflow_version
from tests.orchestration.test_runs import HOW_TO

pytestmark = pytest.mark.django_db(transaction=True)


def run_record(run: Run) -> dict:
    """What a person sees of a run, without ids and times."""
    run.refresh_from_db()
    steps = list(run.steps.all())
    spans = list(Span.objects.filter(run=run).select_related("parent", "step"))
    return {
        "run": (run.status, run.outcome, run.step_count, run.visits, run.state.keys()),
        "tokens": (run.input_tokens, run.output_tokens),
        "steps": [(s.node, s.status, s.attempt, s.output, s.input) for s in steps],
        "spans": sorted(
            (s.step.node, s.kind, s.name, s.parent.name if s.parent else None) for s in spans
        ),
        "ticket": run.ticket.status,
        "replies": Reply.objects.filter(run=run).count(),
    }


def test_the_one_statement_checkpoint_records_what_the_orm_path_records(
    autonomous, support_desk, settings
):
    fast = start_run(ticket=Ticket.objects.create(customer_email="a@example.com", **HOW_TO))
    settings.ENGINE_SINGLE_STATEMENT_WRITES = False
    slow = start_run(ticket=Ticket.objects.create(customer_email="b@example.com", **HOW_TO))
    fast_record, slow_record = run_record(fast), run_record(slow)
    assert fast_record["run"][0] == RunStatus.SUCCEEDED
    assert fast_record["ticket"] == Ticket.Status.ANSWERED
    assert fast_record["replies"] == 1
    assert any(parent for *_, parent in fast_record["spans"]), "child spans keep their parent"
    for part in ("run", "tokens", "steps", "spans", "ticket", "replies"):
        if part == "steps":  # the reply's idempotency key names the run; compare the rest
            assert [s[:3] for s in fast_record[part]] == [s[:3] for s in slow_record[part]]
        else:
            assert fast_record[part] == slow_record[part], part


@pytest.fixture
def claimed_step(monkeypatch):
    """A run of two echo steps whose first step this worker has claimed."""
    from orchestration.agents import registry

    monkeypatch.setitem(registry.AGENTS, "echo", lambda ctx: AgentResult(output={}))
    workflow = ensure_workflow_version(
        definition={
            "name": "echo_twice",
            "start": "one",
            "nodes": [
                {"name": "one", "kind": "agent", "agent": "echo", "edges": [{"to": "two"}]},
                {"name": "two", "kind": "agent", "agent": "echo", "edges": [{"to": "end"}]},
            ],
        },
        config={},
    )
    ticket = Ticket.objects.create(customer_email="c@example.com", subject="s", body="b")
    run = Run.objects.create(workflow=workflow, ticket=ticket)
    now = timezone.now()
    Step.objects.create(
        run=run,
        sequence=1,
        node="one",
        kind="agent",
        agent="echo",
        status=StepStatus.RUNNING,
        attempt=1,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=60),
    )
    return Step.objects.select_related("run__workflow", "run__ticket").get(run=run, sequence=1)


RESULT = AgentResult(
    output={"said": "hello"},
    input_tokens=3,
    output_tokens=4,
    spans=[ChildSpan(kind="model", name="chat echo", started_at=timezone.now(), duration_ms=1)],
)


def test_a_checkpoint_claims_the_next_step_for_the_same_worker(claimed_step):
    following = complete_step(step=claimed_step, result=RESULT, duration_ms=2, claim_next=True)
    assert following is not None and following.pk
    stored = Step.objects.get(pk=following.pk)
    assert (stored.node, stored.status, stored.attempt) == ("two", StepStatus.RUNNING, 1)
    assert stored.lease_expires_at > timezone.now()
    run = Run.objects.get(pk=claimed_step.run_id)
    assert (run.status, run.step_count, run.state) == ("running", 1, {"one": {"said": "hello"}})
    assert (run.input_tokens, run.output_tokens) == (3, 4)
    child = Span.objects.get(run=run, kind="model")
    assert child.parent.name == "invoke_agent echo" and child.step_id == claimed_step.pk


def test_a_worker_that_lost_its_claim_writes_nothing(claimed_step):
    # The lease expired and another worker claimed the step again (attempt 2).
    Step.objects.filter(pk=claimed_step.pk).update(attempt=2)
    assert complete_step(step=claimed_step, result=RESULT, duration_ms=2, claim_next=True) is None
    run = Run.objects.get(pk=claimed_step.run_id)
    assert (run.status, run.step_count, run.state) == (RunStatus.QUEUED, 0, {})
    assert not Span.objects.filter(run=run).exists()
    assert Step.objects.filter(run=run).count() == 1


def test_a_worker_whose_run_was_cancelled_writes_nothing(claimed_step):
    Run.objects.filter(pk=claimed_step.run_id).update(status=RunStatus.CANCELLED)
    Step.objects.filter(pk=claimed_step.pk).update(status=StepStatus.CANCELLED)
    assert complete_step(step=claimed_step, result=RESULT, duration_ms=2) is None
    assert not Span.objects.filter(run_id=claimed_step.run_id).exists()
    assert Step.objects.filter(run_id=claimed_step.run_id).count() == 1


def test_a_run_that_moved_on_under_the_worker_is_not_overwritten(claimed_step):
    # Another writer advanced the run since this worker read it.
    Run.objects.filter(pk=claimed_step.run_id).update(step_count=1, state={"other": {}})
    assert complete_step(step=claimed_step, result=RESULT, duration_ms=2) is None
    run = Run.objects.get(pk=claimed_step.run_id)
    assert run.state == {"other": {}}
    assert Step.objects.get(pk=claimed_step.pk).status == StepStatus.RUNNING
