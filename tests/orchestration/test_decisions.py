"""Operators' decisions: approve, edit, reject; exactly one decision per task."""

import threading

import pytest
from django.db import connection

from orchestration.engine.states import DecisionOutcome, RunStatus, TaskStatus
from orchestration.models import AuditEvent, Decision, HumanTask, Reply
from orchestration.services.decisions import DecisionError, TaskConflict, decide_task
from tests.orchestration.test_runs import SECURITY


@pytest.fixture
def waiting_task(run_ticket):
    run = run_ticket(**SECURITY)
    return HumanTask.objects.get(run=run)


def decide(task, actor, captured, **kwargs):
    with captured(execute=True):
        return decide_task(task_id=task.pk, actor=actor, **kwargs)


def test_approving_sends_the_draft_once(waiting_task, alice, django_capture_on_commit_callbacks):
    decision = decide(waiting_task, alice, django_capture_on_commit_callbacks, action="approve")
    assert decision.outcome == DecisionOutcome.APPROVED
    run = waiting_task.run
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.outcome == "sent"
    reply = Reply.objects.get(run=run)
    assert reply.body == waiting_task.proposal["draft"]
    assert reply.approved_by == alice
    review = run.steps.get(node="review")
    assert review.output["decided_by"] == "alice"


def test_editing_sends_the_edited_text_and_keeps_a_diff(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    edited = waiting_task.proposal["draft"] + "\nWe have locked your account as a precaution."
    decision = decide(
        waiting_task, alice, django_capture_on_commit_callbacks, action="edit", final_text=edited
    )
    assert decision.outcome == DecisionOutcome.EDITED
    assert {"op": "insert", "text": "We have locked your account as a precaution."} in decision.diff
    assert Reply.objects.get(run=waiting_task.run).body == edited.strip()


def test_editing_without_changing_anything_counts_as_approval(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    same = waiting_task.proposal["draft"].replace("\n", "\r\n")  # what a browser posts
    decision = decide(
        waiting_task, alice, django_capture_on_commit_callbacks, action="edit", final_text=same
    )
    assert decision.outcome == DecisionOutcome.APPROVED
    assert decision.diff == []


def test_rejecting_sends_nothing_and_needs_a_reason(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    with pytest.raises(DecisionError, match="needs a reason"):
        decide(waiting_task, alice, django_capture_on_commit_callbacks, action="reject")
    assert not Decision.objects.exists()
    decide(
        waiting_task,
        alice,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="Escalating to the security team by phone",
    )
    run = waiting_task.run
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.outcome == "rejected"
    assert not Reply.objects.filter(run=run).exists()


def test_a_second_decision_is_refused_with_who_decided_first(
    waiting_task, alice, bob, django_capture_on_commit_callbacks
):
    decide(waiting_task, alice, django_capture_on_commit_callbacks, action="approve")
    with pytest.raises(TaskConflict, match="alice already approved this task"):
        decide(waiting_task, bob, django_capture_on_commit_callbacks, action="reject", reason="no")
    assert Decision.objects.count() == 1
    assert Reply.objects.count() == 1


def test_a_form_posted_against_an_old_version_is_refused(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    with pytest.raises(TaskConflict, match="changed since you opened it"):
        decide(
            waiting_task,
            alice,
            django_capture_on_commit_callbacks,
            action="approve",
            expected_version=waiting_task.version + 1,
        )
    waiting_task.refresh_from_db()
    assert waiting_task.status == TaskStatus.OPEN


def test_the_decision_is_on_the_audit_trail_with_its_actor(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    decide(waiting_task, alice, django_capture_on_commit_callbacks, action="approve")
    event = AuditEvent.objects.get(action="task.decided")
    assert event.actor == alice
    assert event.after["outcome"] == "approved"
    assert AuditEvent.objects.filter(action="reply.sent").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_operators_deciding_at_the_same_moment_record_one_decision(
    support_desk, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Group, User

    from orchestration.services.tickets import ingest_tickets
    from tests.conftest import new_ticket

    operators = Group.objects.get_or_create(name="operator")[0]
    people = []
    for name in ("alice", "bob"):
        person = User.objects.create_user(name)
        person.groups.add(operators)
        people.append(person)
    (ticket,) = ingest_tickets(tickets=[new_ticket(**SECURITY)], actor_label="test")
    task = HumanTask.objects.get(run__ticket=ticket)
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def act(person, action):
        try:
            barrier.wait()
            decide_task(
                task_id=task.pk,
                actor=person,
                action=action,
                reason="dup",
                expected_version=task.version,
            )
            results[person.username] = "recorded"
        except TaskConflict as conflict:
            results[person.username] = str(conflict)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=(people[0], "approve")),
        threading.Thread(target=act, args=(people[1], "reject")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()).count("recorded") == 1
    loser = next(v for v in results.values() if v != "recorded")
    assert "already" in loser and "your decision was not recorded" in loser
    assert Decision.objects.filter(task=task).count() == 1


def test_a_decision_on_a_run_that_moved_underneath_is_refused_and_nothing_is_kept(
    waiting_task, alice, monkeypatch
):
    from django.db.models import F

    from orchestration.models import Run
    from orchestration.services import decisions

    real_next_node = decisions.next_node

    def run_moves_meanwhile(*args, **kwargs):
        # Another writer moves the run between the task's lock and the run's write.
        Run.objects.filter(pk=waiting_task.run_id).update(step_count=F("step_count") + 1)
        return real_next_node(*args, **kwargs)

    monkeypatch.setattr(decisions, "next_node", run_moves_meanwhile)
    with pytest.raises(TaskConflict, match="run changed while you decided"):
        decide_task(task_id=waiting_task.pk, actor=alice, action="approve")
    waiting_task.refresh_from_db()
    assert waiting_task.status == TaskStatus.OPEN
    assert not Decision.objects.exists() and not Reply.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_and_a_decision_at_the_same_moment_never_deadlock(support_desk):
    """Both lock the task before the run; whichever comes second meets a clear refusal."""
    from django.contrib.auth.models import Group, User

    from orchestration.models import Run
    from orchestration.services.controls import RunControlError, cancel_run
    from orchestration.services.tickets import ingest_tickets
    from tests.conftest import new_ticket

    person = User.objects.create_user("alice")
    person.groups.add(Group.objects.get_or_create(name="operator")[0])
    for round_ in range(5):
        (ticket,) = ingest_tickets(
            tickets=[new_ticket(**SECURITY, customer_email=f"r{round_}@example.com")],
            actor_label="test",
        )
        task = HumanTask.objects.get(run__ticket=ticket)
        barrier = threading.Barrier(2)
        results: dict[str, str] = {}

        def act(kind, task=task, barrier=barrier, results=results):
            try:
                barrier.wait()
                if kind == "decide":
                    decide_task(task_id=task.pk, actor=person, action="approve")
                else:
                    cancel_run(run_id=task.run_id, actor=person, reason="by phone")
                results[kind] = "done"
            except (TaskConflict, RunControlError) as refused:
                results[kind] = f"refused: {refused}"
            except Exception as error:  # a deadlock would land here
                results[kind] = f"error: {error!r}"
            finally:
                connection.close()

        threads = [threading.Thread(target=act, args=(k,)) for k in ("decide", "cancel")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not any(v.startswith("error") for v in results.values()), results
        run = Run.objects.get(pk=task.run_id)
        if results["cancel"] == "done":
            assert run.status == RunStatus.CANCELLED
        else:
            assert results["decide"] == "done" and run.status != RunStatus.CANCELLED
