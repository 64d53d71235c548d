"""The learning screen: each learned agent's versions and their scores, a chart of the desk
over its promoted versions, the learner's settings and its recent cycles.

Every change goes through ``orchestration.services.learning``, which checks it and writes the
audit trail; its ``LearningError`` messages are meant for the admin and shown as they are.
A version's own page, its promotion and rollback are in ``learning_versions``; the drafter's
exemplars in ``learning_exemplars``."""

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_POST

from console.access import Capability, require
from console.views import learning_exemplars, learning_versions
from console.views.learning_chart import build_chart
from console.views.learning_metrics import COLUMNS, MetricCell, cells, evaluated, in_words
from orchestration.engine.autonomy import AutonomyPolicy
from orchestration.learning.active import LEARNED_AGENTS
from orchestration.models import LearningCycle, LearningSettings, PolicyVersion
from orchestration.services.autonomy import autonomy_report
from orchestration.services.learning import (
    LearningError,
    learning_settings,
    request_learning_cycle,
    update_learning_settings,
)
from orchestration.services.workflows import support_desk_version

# The newest this many versions of each agent are listed.
VERSIONS_SHOWN = 20
CYCLES_SHOWN = 10
AGENT_ROLES = {
    "triage": "classifies each ticket's category and urgency",
    "drafter": "drafts the reply, following approved exemplars",
    "decider": "estimates whether a person would send a draft unchanged; sends it alone only "
    "in categories that earned autonomy",
}


class SettingsForm(forms.Form):
    """Only the types are checked here; the ranges are the service's to enforce."""

    promotion = forms.ChoiceField(
        choices=LearningSettings.Promotion.choices, widget=forms.RadioSelect
    )
    target_precision = forms.FloatField(
        label="Target precision (%)",
        help_text="The evaluation gate lets a candidate's edit rate rise by at most 100% minus "
        "this. Which categories auto-send is earned autonomy, by the workflow's own target "
        "(shown under Autonomy by category).",
        widget=forms.NumberInput(attrs={"step": "0.1", "min": "50", "max": "99.9"}),
    )
    min_evidence = forms.IntegerField(
        label="Minimum evidence",
        help_text="Kept for earlier decider versions; earned autonomy uses the workflow's own "
        "minimum (shown under Autonomy by category).",
        widget=forms.NumberInput(attrs={"min": "1"}),
    )
    decisions_per_cycle = forms.IntegerField(
        label="Decisions per cycle",
        widget=forms.NumberInput(attrs={"min": "1"}),
        help_text="A learning cycle starts after this many new decisions (and on the schedule).",
    )

    @classmethod
    def showing(cls, row: LearningSettings) -> "SettingsForm":
        return cls(
            initial={
                "promotion": row.promotion,
                "target_precision": round(row.target_precision * 100, 2),
                "min_evidence": row.min_evidence,
                "decisions_per_cycle": row.decisions_per_cycle,
            }
        )


@dataclass(frozen=True)
class VersionRow:
    version: PolicyVersion
    cells: list[MetricCell]
    # Whether the gate judged it.
    evaluated: bool

    @property
    def compare(self) -> bool:
        """A candidate's or rejected version's cells set its baseline beside it."""
        undecided = (PolicyVersion.Status.CANDIDATE, PolicyVersion.Status.REJECTED)
        return self.evaluated and self.version.status in undecided


@dataclass(frozen=True)
class CycleOutcome:
    agent: str
    # The candidate's version number, and the version itself while it is on record.
    number: int | None
    version: PolicyVersion | None
    why: str
    passed: bool | None
    failures: list[str]
    promoted: bool


def agent_sections() -> list[dict[str, Any]]:
    sections = []
    for agent in LEARNED_AGENTS:
        versions = PolicyVersion.objects.filter(agent=agent).defer("artifact")
        shown = list(versions.select_related("promoted_by").order_by("-version")[:VERSIONS_SHOWN])
        sections.append(
            {
                "agent": agent,
                "role": AGENT_ROLES.get(agent, ""),
                "rows": [VersionRow(v, cells(v), evaluated(v)) for v in shown],
                "total": versions.count(),
                "active": next((v for v in shown if v.status == v.Status.ACTIVE), None)
                or versions.filter(status=PolicyVersion.Status.ACTIVE).first(),
            }
        )
    return sections


def promoted_history() -> list[PolicyVersion]:
    """Versions that were switched on, in the order they last were."""
    return list(
        PolicyVersion.objects.exclude(promoted_at=None).defer("artifact").order_by("promoted_at")
    )


def recent_cycles() -> list[dict[str, Any]]:
    cycles = list(
        LearningCycle.objects.select_related("requested_by")
        .prefetch_related(Prefetch("candidates", queryset=PolicyVersion.objects.defer("artifact")))
        .order_by("-started_at", "-pk")[:CYCLES_SHOWN]
    )
    found = []
    for cycle in cycles:
        made = {v.agent: v for v in cycle.candidates.all()}
        agents = (cycle.summary or {}).get("agents") or {}
        outcomes = [
            CycleOutcome(
                agent=agent,
                number=outcome.get("candidate"),
                version=made.get(agent),
                why=str(outcome.get("why") or ""),
                passed=outcome.get("passed"),
                failures=[in_words(f) for f in outcome.get("failures") or []],
                promoted=bool(outcome.get("promoted")),
            )
            for agent, outcome in agents.items()
            if isinstance(outcome, dict)
        ]
        found.append({"cycle": cycle, "outcomes": outcomes})
    return found


def _overview(
    request: HttpRequest, *, form: SettingsForm | None = None, status: int = 200
) -> HttpResponse:
    current = learning_settings()
    history = promoted_history()
    context = {
        "sections": agent_sections(),
        "columns": COLUMNS,
        "chart": build_chart([(f"{v.agent} v{v.version}", v.metrics or {}) for v in history]),
        "settings": current,
        "target_precision": f"{current.target_precision * 100:.4g}%",
        "form": form or SettingsForm.showing(current),
        "cycles": recent_cycles(),
        "running": LearningCycle.objects.filter(status=LearningCycle.Status.RUNNING).exists(),
        "autonomy": autonomy_report(),
        "policy": AutonomyPolicy.from_config(support_desk_version().config),
    }
    return render(request, "console/learning/overview.html", context, status=status)


@require_GET
@require(Capability.VIEW_LEARNING)
def overview(request: HttpRequest) -> HttpResponse:
    return _overview(request)


@require_POST
@require(Capability.ADMINISTER)
def settings_save(request: HttpRequest) -> HttpResponse:
    """A refused change is shown on the overview with the form as it was filled in, and
    nothing is saved."""
    form = SettingsForm(request.POST)
    if not form.is_valid():
        return _overview(request, form=_flagged(form), status=400)
    data = form.cleaned_data
    try:
        update_learning_settings(
            actor=request.user,
            promotion=data["promotion"],
            target_precision=data["target_precision"] / 100,
            min_evidence=data["min_evidence"],
            decisions_per_cycle=data["decisions_per_cycle"],
        )
    except LearningError as problem:
        form.add_error(problem.field if problem.field in form.fields else None, str(problem))
        return _overview(request, form=_flagged(form), status=400)
    messages.success(request, "The learner's settings are saved; the next cycle uses them.")
    return redirect("learning:overview")


def _flagged(form: SettingsForm) -> SettingsForm:
    """The refused fields marked invalid, the first one focused: the admin lands on it."""
    for position, name in enumerate(n for n in form.fields if n in form.errors):
        attrs = form.fields[name].widget.attrs
        attrs["aria-invalid"] = "true"
        if position == 0:
            attrs["autofocus"] = True
    return form


@require_POST
@require(Capability.ADMINISTER)
def learn_now(request: HttpRequest) -> HttpResponse:
    running = LearningCycle.objects.filter(status=LearningCycle.Status.RUNNING).exists()
    request_learning_cycle(actor=request.user)
    if running:
        messages.info(
            request, "A learning cycle is running already; its results appear below when it ends."
        )
    else:
        messages.success(request, "A learning cycle is queued; it is listed below once it starts.")
    return redirect("learning:overview")


urlpatterns: list[URLPattern] = [
    path("", overview, name="overview"),
    path("settings/", settings_save, name="settings"),
    path("learn/", learn_now, name="learn"),
    *learning_versions.urlpatterns,
    *learning_exemplars.urlpatterns,
]
