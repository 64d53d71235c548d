"""The shadow view of a candidate: past routing decisions made again under it.

For each recent run that reached the decider, the route it took (auto-send or a person) is
set beside the route it would take with the candidate in place: a triage candidate
classifies the ticket again (and the decider judges the new classification), a decider
candidate scores the recorded features with its model. Each run that would go the other
way is listed with what the person decided on it, so an admin sees, before switching,
which tickets would have gone out alone and whether a person had changed them. Nothing is
run or written: only the classifier and the decider's model and rules are evaluated. A
drafter candidate changes drafts, not routes."""

from dataclasses import dataclass, field

from orchestration.agents.base import TicketView
from orchestration.agents.decider import active_model, decide_route, hard_rule_reasons
from orchestration.agents.decider_model import DeciderModel
from orchestration.agents.triage_model import TriageModel
from orchestration.engine.autonomy import AutonomyPolicy
from orchestration.engine.states import DecisionOutcome, StepStatus, TaskKind
from orchestration.learning.active import DECIDER, TRIAGE, artifact, using
from orchestration.models import CategoryAutonomy, Decision, PolicyVersion, Step
from orchestration.services.workflows import support_desk_version
from orchestration.workflows import support_desk

# How many of the latest routing decisions a shadow view goes over.
DEFAULT_WINDOW = 500
AUTO_SEND, HUMAN = "auto_send", "human"


@dataclass(frozen=True)
class ShadowRow:
    run_id: int
    ticket_id: int
    subject: str
    category_then: str
    category_now: str
    confidence_then: float
    confidence_now: float
    route_then: str
    route_now: str
    # Why the candidate asks a person (empty where it would auto-send).
    reasons_now: tuple[str, ...]
    # What the person decided where the run went to one ("" where it was auto-sent).
    person_outcome: str
    person_changed_text: bool


@dataclass(frozen=True)
class Shadow:
    version: PolicyVersion
    considered: int
    flipped: list[ShadowRow] = field(default_factory=list)
    # Set when the candidate cannot change a route (a drafter version).
    not_applicable: str = ""

    @property
    def to_auto_send(self) -> list[ShadowRow]:
        return [r for r in self.flipped if r.route_now == AUTO_SEND]

    @property
    def to_person(self) -> list[ShadowRow]:
        return [r for r in self.flipped if r.route_now == HUMAN]

    @property
    def auto_sends_a_person_changed(self) -> int:
        """Runs the candidate would send alone where a person had edited or rejected the draft."""
        return sum(1 for r in self.to_auto_send if r.person_changed_text)


def shadow(version: PolicyVersion, window: int = DEFAULT_WINDOW) -> Shadow:
    """The latest ``window`` routing decisions made again with ``version`` in place."""
    if version.agent not in (TRIAGE, DECIDER):
        return Shadow(
            version=version,
            considered=0,
            not_applicable="A drafter version changes the drafts, not where they go.",
        )
    steps = list(
        Step.objects.filter(node="decide", status=StepStatus.SUCCEEDED, output__isnull=False)
        .select_related("run__ticket")
        .order_by("-id")[:window]
    )
    texts = [TicketView.of(s.run.ticket).text for s in steps]
    outcomes = _person_outcomes([s.run_id for s in steps])
    predictions = None
    if version.agent == TRIAGE:
        predictions = artifact(version, TriageModel.loads).predict_many(texts)
    flipped: list[ShadowRow] = []
    config = support_desk_version().config
    policy = AutonomyPolicy.from_config(config)
    with using({version.agent: version}):
        _, model = active_model()
        if version.agent == DECIDER:
            try:
                model = artifact(version, DeciderModel.loads)
            except ValueError:  # a version of the earlier threshold format: no estimate
                model = None
        for index, step in enumerate(steps):
            recorded = step.input or {}
            then_output = step.output or {}
            then = (
                str(recorded.get("category") or ""),
                float(then_output.get("confidence") or 0.0),
                str(recorded.get("urgency") or ""),
            )
            now = then
            row = dict(then_output.get("features") or {})
            if predictions is not None:
                p = predictions[index]
                now = (p.category, p.category_confidence, p.urgency)
                row["category_confidence"] = p.category_confidence
                for key in [k for k in row if k.startswith("category=")]:
                    row[key] = 1.0 if key == f"category={p.category}" else 0.0
            instructions = then_output.get("instructions") or {}
            hard = hard_rule_reasons(
                category=now[0],
                urgency=now[2],
                ticket_text=texts[index],
                instruction_hit=bool(instructions.get("hit")),
                citations=list(recorded.get("citations") or []),
                config=config,
            )
            route = decide_route(
                hard_reasons=hard,
                score=model.estimate(row).score if model is not None and row else None,
                category=now[0],
                policy=policy,
                earned=CategoryAutonomy.earned(now[0], support_desk.NAME),
            )
            route_then = str((step.output or {}).get("route") or "")
            if route.route == route_then:
                continue
            outcome, changed = outcomes.get(step.run_id, ("", False))
            flipped.append(
                ShadowRow(
                    run_id=step.run_id,
                    ticket_id=step.run.ticket_id,
                    subject=step.run.ticket.subject,
                    category_then=then[0],
                    category_now=now[0],
                    confidence_then=then[1],
                    confidence_now=now[1],
                    route_then=route_then,
                    route_now=route.route,
                    reasons_now=route.reasons,
                    person_outcome=outcome,
                    person_changed_text=changed,
                )
            )
    return Shadow(version=version, considered=len(steps), flipped=flipped)


def _person_outcomes(run_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """Per run: the outcome of the person's decision on its review, and whether it changed
    the draft (edited, rejected or escalated rather than approved as it stood)."""
    found: dict[int, tuple[str, bool]] = {}
    rows = (
        Decision.objects.filter(task__run_id__in=run_ids, task__kind=TaskKind.APPROVAL)
        .order_by("created_at")
        .values_list("task__run_id", "outcome")
    )
    for run_id, outcome in rows:
        found[run_id] = (outcome, outcome != DecisionOutcome.APPROVED)
    return found
