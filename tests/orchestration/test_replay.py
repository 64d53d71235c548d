"""Replaying a finished run from step N: agents run again, nothing is written or sent, and
each new output stands beside the original."""

import pytest

from orchestration.agents import drafter, registry
from orchestration.engine.states import RunStatus
from orchestration.models import AuditEvent, HumanTask, Reply, Run, Span, Step
from orchestration.services.decisions import decide_task
from orchestration.services.replay import ReplayError, replay_run
from orchestration.services.workflows import ensure_workflow_version
from orchestration.workflows import support_desk
from tests.conftest import client_for
from tests.orchestration.test_runs import HOW_TO, SECURITY
from tools_registry.models import ToolCall


def counts():
    return (
        Step.objects.count(),
        Span.objects.count(),
        Reply.objects.count(),
        ToolCall.objects.count(),
        Run.objects.values_list("status", "state", "step_count").order_by("pk").first(),
    )


def test_a_replay_of_an_unchanged_run_matches_and_writes_nothing(autonomous, run_ticket, alice):
    run = run_ticket(**HOW_TO)
    assert run.outcome == "auto_sent"
    before = counts()
    replay = replay_run(run_id=run.pk, from_sequence=1, actor=alice)
    assert [s.node for s in replay.steps] == ["triage", "research", "draft", "decide", "send"]
    assert replay.changed == [], [s.node for s in replay.changed]
    # The send returned the recorded reply; no second reply, no new call, no new row.
    send = replay.steps[-1]
    assert send.replayed["reply_id"] == Reply.objects.get(run=run).pk
    assert counts() == before
    assert replay.ending == "the workflow ended"
    event = AuditEvent.objects.get(action="run.replayed")
    assert event.actor == alice and event.after["changed"] == 0


def test_a_replay_from_a_later_step_keeps_the_earlier_outputs(autonomous, run_ticket, monkeypatch):
    run = run_ticket(**HOW_TO)
    original_triage = run.steps.get(node="triage").output

    def other_drafter(ctx):
        assert ctx.state["triage"] == original_triage  # the recorded output, not a new one
        result = drafter.run(ctx)
        result.output["text"] = "A different draft.\n" + result.output["text"]
        return result

    monkeypatch.setitem(registry.AGENTS, "drafter", other_drafter)
    replay = replay_run(run_id=run.pk, from_sequence=3)
    assert [s.node for s in replay.steps] == ["draft", "decide", "send"]
    draft = replay.steps[0]
    assert draft.changed and draft.replayed["text"].startswith("A different draft.")
    assert draft.original["text"] == run.steps.get(node="draft").output["text"]
    assert Reply.objects.filter(run=run).count() == 1


def test_a_replay_on_a_stricter_config_shows_where_a_person_would_be_asked(autonomous, run_ticket):
    run = run_ticket(**HOW_TO)
    strict = ensure_workflow_version(
        definition=support_desk.DEFINITION,
        config={
            **support_desk.CONFIG,
            "autonomy": {**support_desk.CONFIG["autonomy"], "send_threshold": 0.999},
        },
    )
    before = counts()
    replay = replay_run(run_id=run.pk, from_sequence=1, workflow=strict)
    decide = next(s for s in replay.steps if s.node == "decide")
    assert decide.original["route"] == "auto_send" and decide.replayed["route"] == "human"
    assert replay.steps[-1].node == "review" and replay.steps[-1].original is None
    assert replay.ending == "would wait for a person here"
    assert counts() == before


def test_a_replay_reuses_a_persons_recorded_decision(
    run_ticket, alice, django_capture_on_commit_callbacks
):
    run = run_ticket(**SECURITY)
    task = HumanTask.objects.get(run=run)
    with django_capture_on_commit_callbacks(execute=True):
        decide_task(task_id=task.pk, actor=alice, action="edit", final_text="Edited reply.")
    run.refresh_from_db()
    assert run.outcome == "sent"
    replay = replay_run(run_id=run.pk, from_sequence=1)
    review = next(s for s in replay.steps if s.node == "review")
    assert review.source == "recorded" and review.replayed["final_text"] == "Edited reply."
    assert replay.steps[-1].node == "send" and not replay.steps[-1].changed
    assert Reply.objects.filter(run=run).count() == 1


def test_a_send_the_original_never_made_is_not_made(run_ticket, alice):
    # The original was rejected: nothing was sent. A replay that ends in a send sends nothing.
    run = run_ticket(**SECURITY)
    task = HumanTask.objects.get(run=run)
    decide_task(task_id=task.pk, actor=alice, action="reject", reason="wrong customer")
    step = run.steps.get(node="review")
    step.output = {**step.output, "approved": True}  # as if a person had approved
    step.save(update_fields=["output"])
    Run.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    replay = replay_run(run_id=run.pk, from_sequence=1)
    send = replay.steps[-1]
    assert send.node == "send" and send.original is None
    assert send.replayed == {"outcome": "sent", "reply_id": None, "executed": False}
    assert not Reply.objects.exists()
    assert not ToolCall.objects.filter(tool="send_reply").exists()


def test_only_a_finished_run_and_a_step_that_ran_can_be_replayed(autonomous, run_ticket):
    waiting = run_ticket(**SECURITY)
    with pytest.raises(ReplayError, match="only a finished run"):
        replay_run(run_id=waiting.pk, from_sequence=1)
    done = run_ticket(**HOW_TO)
    with pytest.raises(ReplayError, match="no step 9"):
        replay_run(run_id=done.pk, from_sequence=9)
    with pytest.raises(ReplayError, match="does not exist"):
        replay_run(run_id=10**9, from_sequence=1)


def test_the_run_page_offers_a_replay_and_shows_it_side_by_side(
    autonomous, run_ticket, alice, monkeypatch
):
    run = run_ticket(**HOW_TO)
    client = client_for(alice)
    page = client.get(f"/runs/{run.pk}/").content.decode()
    assert f'action="/runs/{run.pk}/replay/"' in page
    monkeypatch.setitem(
        registry.AGENTS,
        "drafter",
        lambda ctx: drafter.run(ctx).__class__(
            output={**drafter.run(ctx).output, "text": "<script>alert(1)</script>"}
        ),
    )
    response = client.post(f"/runs/{run.pk}/replay/", {"from_step": 3})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Replay of run" in body and "changed" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert client.get(f"/runs/{run.pk}/replay/").status_code == 405
    bad = client.post(f"/runs/{run.pk}/replay/", {"from_step": "x"})
    assert bad.status_code == 302 and bad["Location"] == f"/runs/{run.pk}/"
