"""Agent A, triage: category and urgency with calibrated confidences."""

from orchestration.agents.base import AgentContext, AgentResult, timed_span
from orchestration.agents.triage_model import TriageModel
from orchestration.models import PolicyVersion

AGENT = "triage"
_loaded: dict[str, TriageModel] = {}


class NoActiveModel(RuntimeError):
    pass


def active_model() -> tuple[PolicyVersion, TriageModel]:
    """The active triage version and its model, loaded once per process per artifact."""
    version = (
        PolicyVersion.objects.filter(agent=AGENT, status=PolicyVersion.Status.ACTIVE)
        .defer("artifact")
        .first()
    )
    if version is None:
        raise NoActiveModel("no triage model is active; run `manage.py train_triage`")
    model = _loaded.get(version.artifact_sha256)
    if model is None:
        blob = PolicyVersion.objects.values_list("artifact", flat=True).get(pk=version.pk)
        model = TriageModel.loads(bytes(blob))
        _loaded.clear()
        _loaded[version.artifact_sha256] = model
    return version, model


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
