"""A learned version's scores as the learning screens show them: its own value of each metric,
and for an evaluated version the baseline's value beside it with the gate's verdict.

The evaluation record is written by the learner (``services.learning_cycle._judge``):
``{"passed", "checks": {metric: {"candidate", "baseline", "better", "ok"}}, "failures",
"baseline": <the baseline's scores>}``. Versions stored before the gate existed, or a first
model scored on the held-out split, have no record; their cells show the value alone."""

from dataclasses import dataclass
from typing import Any

from orchestration.models import PolicyVersion

# The columns of the version tables: metric key, heading, higher or lower is better.
COLUMNS = (
    ("category_accuracy", "Accuracy", "higher"),
    ("category_macro_f1", "Macro-F1", "higher"),
    ("edit_rate", "Edit rate", "lower"),
    ("auto_send_rate", "Auto-send rate", ""),
    ("wrong_auto_send_rate", "Wrong auto-send rate", "lower"),
)
# The fuller list on a version's own page.
DETAIL_ROWS = (
    *COLUMNS[:2],
    ("urgency_accuracy", "Urgency accuracy", "higher"),
    ("decided_category_accuracy", "Accuracy on decided tickets", "higher"),
    *COLUMNS[2:],
)
# Scores that are not shares: shown as a number, not a percentage.
PLAIN = {"category_macro_f1", "urgency_macro_f1"}


def shown(metric: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    if metric in PLAIN:
        return f"{value:.3f}"
    return f"{value:.1%}"


@dataclass(frozen=True)
class MetricCell:
    metric: str
    heading: str
    value: str
    # The baseline's value where the version was evaluated against one, else "".
    baseline: str = ""
    # The gate's verdict on a guarded metric: True passed, False failed, None not guarded.
    ok: bool | None = None
    better: str = ""


def evaluated(version: PolicyVersion) -> bool:
    return bool((version.evaluation or {}).get("checks"))


def cells(
    version: PolicyVersion, rows: tuple[tuple[str, str, str], ...] = COLUMNS
) -> list[MetricCell]:
    evaluation = version.evaluation or {}
    checks: dict[str, dict[str, Any]] = evaluation.get("checks") or {}
    baseline_scores: dict[str, Any] = evaluation.get("baseline") or {}
    metrics = version.metrics or {}
    found = []
    for metric, heading, better in rows:
        check = checks.get(metric)
        value = metrics.get(metric, check.get("candidate") if check else None)
        baseline = check.get("baseline") if check else baseline_scores.get(metric)
        found.append(
            MetricCell(
                metric=metric,
                heading=heading,
                value=shown(metric, value),
                baseline=shown(metric, baseline) if (check or baseline_scores) else "",
                ok=bool(check["ok"]) if check else None,
                better=better,
            )
        )
    return found


def in_words(metric: object) -> str:
    return str(metric).replace("_", " ")


def failures(version: PolicyVersion) -> list[str]:
    """The guarded metrics the version was worse on, in words ("edit rate")."""
    evaluation = version.evaluation or {}
    listed = evaluation.get("failures")
    if listed is None:
        checks = evaluation.get("checks") or {}
        listed = [name for name, check in checks.items() if not check.get("ok")]
    return [in_words(name) for name in listed]
