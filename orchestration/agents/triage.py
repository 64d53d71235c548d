"""Agent A, triage: category and urgency with calibrated confidences."""

from orchestration.agents.base import AgentContext, AgentResult, timed_span
from orchestration.agents.triage_model import TriageModel
from orchestration.learning.active import artifact, current_version
from orchestration.models import PolicyVersion

AGENT = "triage"


class NoActiveModel(RuntimeError):
    pass


def active_model() -> tuple[PolicyVersion, TriageModel]:
    """The triage version in use (the active one, or an evaluation's) and its model, loaded
    once per process per artifact."""
    version = current_version(AGENT)
    if version is None:
        raise NoActiveModel("no triage model is active; run `manage.py train_triage`")
    return version, artifact(version, TriageModel.loads)


def run(ctx: AgentContext) -> AgentResult:
    spans: list = []
    version, model = active_model()
    with timed_span(spans, "model", f"classify {AGENT} v{version.version}") as attributes:
        prediction = model.predict(ctx.ticket.text)
        attributes.update(
            {
                "gen_ai.operation.name": "classify",
                "gen_ai.request.model": f"triage-v{version.version}",
                "gen_ai.provider.name": "scikit-learn",
            }
        )
    top = sorted(prediction.category_scores.items(), key=lambda kv: kv[1], reverse=True)[:3]
    return AgentResult(
        output={
            "category": prediction.category,
            "category_confidence": prediction.category_confidence,
            "urgency": prediction.urgency,
            "urgency_confidence": prediction.urgency_confidence,
            "alternatives": [{"category": c, "score": s} for c, s in top],
            "model_version": version.version,
        },
        input={"text_chars": len(ctx.ticket.text)},
        spans=spans,
        attributes={"gen_ai.agent.name": AGENT},
    )
