"""Statuses of runs, steps and human tasks, and the only transitions allowed between them."""

from collections.abc import Mapping
from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING_HUMAN = "waiting_human"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING_HUMAN = "waiting_human"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    OPEN = "open"
    DECIDED = "decided"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class TaskKind(StrEnum):
    APPROVAL = "approval"
    EXCEPTION = "exception"
    # A person approves or rejects one exact tool call an agent wants to make.
    TOOL_APPROVAL = "tool_approval"
    # A reply that went out alone, sampled for a person to say afterwards whether it was right.
    REVIEW = "review"


class DecisionOutcome(StrEnum):
    APPROVED = "approved"
    EDITED = "edited"
    REJECTED = "rejected"
    ESCALATED = "escalated"
    EXPIRED = "expired"
    # Outcomes of an exception task (a run paused by a limit).
    RESUMED = "resumed"
    CANCELLED = "cancelled"


RUN_TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.WAITING_HUMAN, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
    ),
    RunStatus.WAITING_HUMAN: frozenset(
        {RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
    ),
    RunStatus.SUCCEEDED: frozenset(),
    # Failed is where a run ends by itself; only an operator's retry takes it up again.
    RunStatus.FAILED: frozenset({RunStatus.RUNNING}),
    RunStatus.CANCELLED: frozenset(),
}

STEP_TRANSITIONS: Mapping[StepStatus, frozenset[StepStatus]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.CANCELLED}),
    StepStatus.RUNNING: frozenset(
        {
            StepStatus.SUCCEEDED,
            StepStatus.FAILED,
            StepStatus.WAITING_HUMAN,
            StepStatus.CANCELLED,
            # A lease that expired hands the step back to the queue.
            StepStatus.PENDING,
        }
    ),
    # A step held back by a limit goes to the queue when a person resumes the run.
    StepStatus.WAITING_HUMAN: frozenset(
        {StepStatus.SUCCEEDED, StepStatus.CANCELLED, StepStatus.PENDING}
    ),
    StepStatus.SUCCEEDED: frozenset(),
    # An operator may send a failed step back to the queue.
    StepStatus.FAILED: frozenset({StepStatus.PENDING}),
    StepStatus.CANCELLED: frozenset(),
}

TASK_TRANSITIONS: Mapping[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.OPEN: frozenset({TaskStatus.DECIDED, TaskStatus.EXPIRED, TaskStatus.CANCELLED}),
    TaskStatus.DECIDED: frozenset(),
    TaskStatus.EXPIRED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}

# Where a run stops by itself: nothing more happens to it unless a person acts.
FINAL_RUN_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class InvalidTransition(Exception):
    """A status change that the state machine does not allow."""


def check_run_transition(current: RunStatus, target: RunStatus) -> None:
    if target not in RUN_TRANSITIONS[current]:
        raise InvalidTransition(f"a run cannot go from {current} to {target}")


def check_step_transition(current: StepStatus, target: StepStatus) -> None:
    if target not in STEP_TRANSITIONS[current]:
        raise InvalidTransition(f"a step cannot go from {current} to {target}")


def check_task_transition(current: TaskStatus, target: TaskStatus) -> None:
    if target not in TASK_TRANSITIONS[current]:
        raise InvalidTransition(f"a task cannot go from {current} to {target}")
