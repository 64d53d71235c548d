import pytest

from orchestration.engine.states import (
    FINAL_RUN_STATUSES,
    InvalidTransition,
    RunStatus,
    StepStatus,
    TaskStatus,
    check_run_transition,
    check_step_transition,
    check_task_transition,
)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (RunStatus.QUEUED, RunStatus.RUNNING),
        (RunStatus.RUNNING, RunStatus.WAITING_HUMAN),
        (RunStatus.WAITING_HUMAN, RunStatus.RUNNING),
        (RunStatus.WAITING_HUMAN, RunStatus.SUCCEEDED),
        (RunStatus.RUNNING, RunStatus.SUCCEEDED),
        (RunStatus.RUNNING, RunStatus.FAILED),
        (RunStatus.QUEUED, RunStatus.CANCELLED),
    ],
)
def test_a_run_may_make_these_moves(current, target):
    check_run_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (RunStatus.SUCCEEDED, RunStatus.RUNNING),
        (RunStatus.FAILED, RunStatus.SUCCEEDED),
        (RunStatus.CANCELLED, RunStatus.QUEUED),
        (RunStatus.QUEUED, RunStatus.WAITING_HUMAN),
        (RunStatus.QUEUED, RunStatus.SUCCEEDED),
    ],
)
def test_a_run_refuses_these_moves(current, target):
    with pytest.raises(InvalidTransition):
        check_run_transition(current, target)


def test_finished_runs_go_nowhere():
    assert {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED} == FINAL_RUN_STATUSES


def test_a_step_is_claimed_only_from_pending():
    check_step_transition(StepStatus.PENDING, StepStatus.RUNNING)
    for status in (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.WAITING_HUMAN):
        with pytest.raises(InvalidTransition):
            check_step_transition(status, StepStatus.RUNNING)


def test_a_decided_task_cannot_be_decided_again():
    check_task_transition(TaskStatus.OPEN, TaskStatus.DECIDED)
    with pytest.raises(InvalidTransition):
        check_task_transition(TaskStatus.DECIDED, TaskStatus.DECIDED)
