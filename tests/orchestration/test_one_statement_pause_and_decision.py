"""A pause for a person and a person's decision on PostgreSQL, one statement each, record
what the ORM path records, append their audit events to the one hash chain, and write nothing
when the task or the run moved on meanwhile."""

import threading

import pytest
from django.db import connection

from orchestration.models import (
    AuditChainHead,
    AuditEvent,
    Decision,
    HumanTask,
    Reply,
    Span,
    Ticket,
)
from orchestration.services import checkpoint, decision_statement, decisions
from orchestration.services.audit import record_event, verify_chain
from orchestration.services.decisions import TaskConflict, decide_task
from orchestration.services.runs import start_run
from tests.orchestration.test_runs import SECURITY

pytestmark = pytest.mark.django_db(transaction=True)


def paused(email: str) -> HumanTask:
    """A security ticket's run, waiting for a person."""
    run = start_run(ticket=Ticket.objects.create(customer_email=email, **SECURITY))
    return HumanTask.objects.get(run=run)


def events(task: HumanTask) -> list[tuple]:
    """The task's audit events as a person reads them, with the run's id taken out."""
    rows = AuditEvent.objects.filter(object_type="task", object_id=str(task.pk))
    return [
        (e.action, e.actor_label, e.before, {**(e.after or {}), "run": "-"})
        for e in rows.order_by("sequence")
    ]


def task_record(task: HumanTask) -> dict:
    task.refresh_from_db()
    run, step = task.run, task.step
    run.refresh_from_db()
    step.refresh_from_db()
    return {
        "task": (task.kind, task.status, task.proposal, task.category, task.urgency),
        "queue": (task.urgency_rank, task.confidence, task.reason, task.version),
        "step": (step.node, step.kind, step.status, step.attempt, step.output),
        "run": (run.status, run.outcome, run.step_count, run.visits, sorted(run.state)),
        "spans": sorted((s.kind, s.name) for s in Span.objects.filter(run=run)),
        "steps": [(s.node, s.status) for s in run.steps.order_by("sequence")],
        "events": events(task),
        "replies": [r.body for r in Reply.objects.filter(run=run)],
    }


@pytest.fixture
def statements_run(monkeypatch):
    """The single statements the engine runs, by name, as they run."""
    names = {checkpoint.CHECKPOINT_SQL: "checkpoint", decision_statement.DECIDE_SQL: "decide"}
    seen: list[str] = []
    real = checkpoint.run_statement

    def spy(sql, params):
        seen.append(names.get(sql, "other"))
        return real(sql, params)

    for module in (checkpoint, decision_statement):
        monkeypatch.setattr(module, "run_statement", spy)
    return seen


def test_a_pause_in_one_statement_records_what_the_orm_path_records(
    support_desk, settings, statements_run
):
    fast = paused("a@example.com")
    assert statements_run.count("checkpoint") == 4  # triage, research, draft, decide
    settings.ENGINE_SINGLE_STATEMENT_WRITES = False
    statements_run.clear()
    slow = paused("b@example.com")
    assert "checkpoint" not in statements_run
    fast_record, slow_record = task_record(fast), task_record(slow)
    assert fast_record["task"][:2] == ("approval", "open")
    assert fast_record["step"][2] == "waiting_human"
    assert fast_record["events"][0][:2] == ("task.opened", "agent:decider")
    assert fast_record == slow_record
    assert verify_chain().intact


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("approve", {}),
        ("edit", {"final_text": "Your account is locked.\nWe will call you."}),
        ("reject", {"reason": "Handled by phone."}),
    ],
)
def test_a_decision_in_one_statement_records_what_the_orm_path_records(
    support_desk, settings, alice, action, fields, statements_run
):
    fast, slow = paused("a@example.com"), paused("b@example.com")
    statements_run.clear()
    fast_decision = decide_task(task_id=fast.pk, actor=alice, action=action, **fields)
    assert statements_run[:2] == ["other", "decide"]  # the task read, then the decision
    settings.ENGINE_SINGLE_STATEMENT_WRITES = False
    statements_run.clear()
    slow_decision = decide_task(task_id=slow.pk, actor=alice, action=action, **fields)
    assert "decide" not in statements_run
    fast_record, slow_record = task_record(fast), task_record(slow)
    assert fast_record["task"][1] == "decided" and fast_record["queue"][3] == 2
    assert fast_record["events"][-1][:2] == ("task.decided", "alice")
    assert fast_record == slow_record
    stored = [Decision.objects.get(pk=d.pk) for d in (fast_decision, slow_decision)]
    assert len({(d.actor_id, d.outcome, d.final_text, str(d.diff), d.reason) for d in stored}) == 1
    assert verify_chain().intact


def test_a_decision_read_before_another_was_recorded_writes_nothing(
    support_desk, alice, bob, monkeypatch
):
    task = paused("a@example.com")
    read_before = decision_statement.load_task(task.pk)
    decide_task(task_id=task.pk, actor=bob, action="approve")
    # Alice's decision read the task while it was open; Bob's was recorded in between.
    monkeypatch.setattr(decisions, "load_task", lambda task_id: read_before)
    with pytest.raises(TaskConflict, match="bob already approved this task"):
        decide_task(task_id=task.pk, actor=alice, action="reject", reason="spam")
    assert list(Decision.objects.filter(task=task).values_list("actor__username", flat=True)) == [
        "bob"
    ]
    assert [e[0] for e in events(task)] == ["task.opened", "task.decided"]
    assert Reply.objects.filter(run=task.run).count() == 1


def test_a_database_without_the_chain_head_gets_one_at_the_first_pause(support_desk):
    with connection.cursor() as cursor:  # as a fresh or flushed database has it
        cursor.execute(f"TRUNCATE {AuditEvent._meta.db_table}, {AuditChainHead._meta.db_table}")
    task = paused("a@example.com")
    assert [e[0] for e in events(task)] == ["task.opened"]
    # The research agent's search came first and started the chain.
    first = AuditEvent.objects.get(sequence=1)
    assert (first.action, first.previous_hash) == ("tool.called", "0" * 64)
    assert AuditChainHead.objects.get().last_sequence == AuditEvent.objects.count() == 2
    assert verify_chain().intact


def test_appends_from_statements_and_transactions_at_once_make_one_chain(support_desk, alice):
    tasks = [paused(f"t{n}@example.com") for n in range(6)]
    before = AuditEvent.objects.count()
    barrier = threading.Barrier(4)
    failures: list[BaseException] = []

    def decide(chunk):
        try:
            barrier.wait()
            for task in chunk:
                decide_task(task_id=task.pk, actor=alice, action="approve")
        except BaseException as error:  # reported below; a thread's exception is lost
            failures.append(error)
        finally:
            connection.close()

    def append(n):
        try:
            barrier.wait()
            for i in range(10):
                record_event(action="test.appended", object_type="probe", object_id=f"{n}-{i}")
        except BaseException as error:
            failures.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(tasks[:3],)),
        threading.Thread(target=decide, args=(tasks[3:],)),
        threading.Thread(target=append, args=(1,)),
        threading.Thread(target=append, args=(2,)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    report = verify_chain()
    assert report.intact, report.problem
    assert AuditEvent.objects.filter(action="task.decided").count() == 6
    assert AuditEvent.objects.filter(action="test.appended").count() == 20
    assert AuditChainHead.objects.get().last_sequence == AuditEvent.objects.count() > before
