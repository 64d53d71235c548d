"""Replay: run a finished run again from step N, as a dry run, and compare.

Nothing is written and no side effect happens: the steps before N keep their recorded
outputs, each agent from N on runs again on the state it would have had, tool calls go
through the gateway's dry run (a call the original run made returns its recorded result;
any other is not executed), and a person's recorded decision is reused where the replay
reaches the same node at the same place. The result sets each new output beside the
original. Evaluations of candidate agent versions are built on this."""

import json
from dataclasses import dataclass, field, replace
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from orchestration.agents.base import AgentContext, TicketView
from orchestration.agents.registry import get_agent
from orchestration.agents.schemas import output_problems
from orchestration.engine.planner import NoRoute, next_node
from orchestration.engine.states import StepStatus
from orchestration.engine.workflow import NodeKind
from orchestration.models import Run, Step, Workflow
from orchestration.services.audit import record_event
from tools_registry.gateway import dry_run

# A replay that loops is stopped here, whatever the workflow's own limits.
MAX_REPLAY_STEPS = 50
# A replay may start from a step that ran, not from one held or queued.
RAN = (StepStatus.SUCCEEDED, StepStatus.FAILED)


class ReplayError(Exception):
    """A replay that cannot be made; the message is meant for the person who asked."""


@dataclass(frozen=True)
class ReplayedStep:
    sequence: int
    node: str
    agent: str
    # "agent" (run again), "recorded" (an earlier output reused: a person's decision).
    source: str
    # The original run's output at this place, or None where the original went elsewhere.
    original: dict[str, Any] | None
    replayed: dict[str, Any] | None
    problems: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.original != self.replayed


@dataclass(frozen=True)
class Replay:
    run_id: int
    from_sequence: int
    workflow_version: int
    steps: list[ReplayedStep] = field(default_factory=list)
    # Why the replay stopped where it did, in words.
    ending: str = ""

    @property
    def changed(self) -> list[ReplayedStep]:
        return [s for s in self.steps if s.changed]


def replayable_steps(run: Run) -> list[Step]:
    """The steps a replay of ``run`` may start from: those that ran (not held or queued)."""
    if not run.is_final:
        return []
    return [s for s in run.steps.order_by("sequence") if s.status in RAN]


def replay_run(
    *,
    run_id: int,
    from_sequence: int,
    workflow: Workflow | None = None,
    actor: AbstractBaseUser | None = None,
) -> Replay:
    """Replay run ``run_id`` from its step ``from_sequence`` with its own workflow version,
    or with ``workflow`` (another version, say with a candidate's config)."""
    try:
        run = Run.objects.select_related("workflow", "ticket").get(pk=run_id)
    except Run.DoesNotExist:
        raise ReplayError(f"Run {run_id} does not exist.") from None
    if not run.is_final:
        raise ReplayError(f"Run {run.pk} is {run.status}; only a finished run can be replayed.")
    originals = {s.sequence: s for s in run.steps.order_by("sequence")}
    start = originals.get(from_sequence)
    if start is None or start.status not in RAN:
        raise ReplayError(f"Run {run.pk} has no step {from_sequence} that ran.")
    workflow = workflow or run.workflow
    definition = workflow.parsed
    if start.node not in {n.name for n in definition.nodes}:
        raise ReplayError(f"Workflow version {workflow.version} has no node {start.node!r}.")
    state = {
        s.node: s.output
        for seq, s in originals.items()
        if seq < from_sequence and s.output is not None
    }
    ticket = TicketView.of(run.ticket)
    replay = Replay(run_id=run.pk, from_sequence=from_sequence, workflow_version=workflow.version)
    steps, ending = walk(
        workflow=workflow,
        ticket=ticket,
        run_id=run.pk,
        state=state,
        node_name=start.node,
        sequence=from_sequence,
        originals=originals,
    )
    replay.steps.extend(steps)
    return _ended(replay, run, actor, ending)


def replay_ticket(
    *, ticket: TicketView, workflow: Workflow, memo: "AgentMemo | None" = None
) -> tuple[list[ReplayedStep], str]:
    """Run ``workflow`` on a ticket from its start, as a dry run, until it would wait for a
    person or ends: the agents' outputs and why it stopped. Nothing is written; the
    evaluation of learned versions replays its scenarios this way."""
    return walk(
        memo=memo,
        workflow=workflow,
        ticket=ticket,
        run_id=0,  # no run: tool calls' keys match no recorded call
        state={},
        node_name=workflow.parsed.start,
        sequence=1,
        originals={},
    )


def walk(
    *,
    workflow: Workflow,
    ticket: TicketView,
    run_id: int,
    state: dict[str, Any],
    node_name: str | None,
    sequence: int,
    originals: dict[int, Step],
    memo: "AgentMemo | None" = None,
) -> tuple[list[ReplayedStep], str]:
    """The dry-run walk a replay makes from ``node_name``: each agent runs on the state it
    would have had, a person's recorded output is reused where the walk reaches the same
    node at the same place, and the walk stops where a person would have to decide."""
    definition = workflow.parsed
    steps: list[ReplayedStep] = []
    with dry_run():
        while node_name is not None:
            if len(steps) >= MAX_REPLAY_STEPS:
                return steps, f"stopped after {MAX_REPLAY_STEPS} steps"
            node = definition.node(node_name)
            same_place = originals.get(sequence)
            original = same_place.output if same_place and same_place.node == node_name else None
            if node.kind == NodeKind.HUMAN:
                if original is None:
                    steps.append(ReplayedStep(sequence, node_name, "", "recorded", None, None))
                    return steps, "would wait for a person here"
                output, source, problems = original, "recorded", ()
            else:
                context = AgentContext(
                    run_id=run_id,
                    step_sequence=sequence,
                    ticket=ticket,
                    state=state,
                    config=workflow.config,
                    workflow=workflow.name,
                )
                try:
                    if memo is not None:
                        output = memo.output(node.agent or "", context)
                    else:
                        output = get_agent(node.agent or "")(context).output
                except Exception as exc:
                    steps.append(
                        ReplayedStep(
                            sequence,
                            node_name,
                            node.agent or "",
                            "agent",
                            original,
                            None,
                            (f"{type(exc).__name__}: {exc}",),
                        )
                    )
                    return steps, f"{node.agent} failed"
                source, problems = "agent", tuple(output_problems(node.agent or "", output))
            steps.append(
                ReplayedStep(
                    sequence, node_name, node.agent or "", source, original, output, problems
                )
            )
            state = {**state, node_name: output}
            try:
                node_name = next_node(definition, node_name, output)
            except NoRoute as exc:
                return steps, str(exc)
            sequence += 1
    return steps, "the workflow ended"


class AgentMemo:
    """Agents' outputs kept across dry runs: an agent given the same ticket, the same state
    and the same learned version (``versions``, set per replay) gives the same output, so an
    evaluation that replays the same scenarios with one agent's version changed runs only
    that agent, and the agents after it whose input it changed, again."""

    def __init__(self) -> None:
        self._outputs: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.versions: dict[str, int | None] = {}
        self.hits = 0

    def output(self, agent: str, context: AgentContext) -> dict[str, Any]:
        key = (
            agent,
            self.versions.get(agent),
            context.ticket,
            json.dumps(context.state, sort_keys=True, default=str),
            json.dumps(context.config, sort_keys=True, default=str),
        )
        found = self._outputs.get(key)
        if found is None:
            found = self._outputs[key] = get_agent(agent)(context).output
        else:
            self.hits += 1
        return found


def _ended(replay: Replay, run: Run, actor: AbstractBaseUser | None, ending: str) -> Replay:
    finished = replace(replay, ending=ending)
    if actor is not None:
        record_event(
            action="run.replayed",
            actor=actor,
            object_type="run",
            object_id=run.pk,
            after={
                "from_step": replay.from_sequence,
                "workflow_version": replay.workflow_version,
                "steps": len(replay.steps),
                "changed": len(finished.changed),
                "ending": ending,
            },
        )
    return finished
