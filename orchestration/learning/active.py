"""Which learned version each agent uses: the active one, or within ``using`` the versions
an evaluation or a shadow comparison names. Artifacts are loaded once per process."""

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from orchestration.models import PolicyVersion

TRIAGE, DRAFTER, DECIDER = "triage", "drafter", "decider"
LEARNED_AGENTS = (TRIAGE, DRAFTER, DECIDER)
EXEMPLARS_FORMAT = "switchboard-exemplars-1"
THRESHOLDS_FORMAT = "switchboard-thresholds-1"

# agent -> the version to use instead of the active one (None: as if none were active).
_overrides: ContextVar[Mapping[str, PolicyVersion | None] | None] = ContextVar(
    "switchboard_policy_overrides", default=None
)
_artifacts: dict[str, Any] = {}


@contextmanager
def using(versions: Mapping[str, PolicyVersion | None]) -> Iterator[None]:
    """Within this block the named agents use these versions (agents not named: active)."""
    token = _overrides.set({**(_overrides.get() or {}), **versions})
    try:
        yield
    finally:
        _overrides.reset(token)


def current_version(agent: str) -> PolicyVersion | None:
    """The version ``agent`` uses here and now, without its artifact loaded."""
    overrides = _overrides.get() or {}
    if agent in overrides:
        return overrides[agent]
    return (
        PolicyVersion.objects.filter(agent=agent, status=PolicyVersion.Status.ACTIVE)
        .defer("artifact")
        .first()
    )


def artifact(version: PolicyVersion, load: Any) -> Any:
    """``load(bytes)`` of the version's artifact, kept per artifact hash."""
    loaded = _artifacts.get(version.artifact_sha256)
    if loaded is None:
        blob = PolicyVersion.objects.values_list("artifact", flat=True).get(pk=version.pk)
        loaded = load(bytes(blob))
        if len(_artifacts) > 16:
            _artifacts.clear()
        _artifacts[version.artifact_sha256] = loaded
    return loaded


def json_artifact(expected_format: str) -> Any:
    def load(blob: bytes) -> dict[str, Any]:
        payload = json.loads(blob)
        if payload.get("format") != expected_format:
            raise ValueError(f"not a {expected_format} artifact")
        return payload

    return load


def exemplar_ids(version: PolicyVersion | None) -> frozenset[int] | None:
    """The exemplars a drafter version holds, or None for no version."""
    if version is None:
        return None
    return frozenset(artifact(version, json_artifact(EXEMPLARS_FORMAT))["exemplars"])


def house_edits(version: PolicyVersion | None) -> frozenset[str]:
    """The house-style edits a drafter version carries over (learning.house_style)."""
    if version is None:
        return frozenset()
    return frozenset(artifact(version, json_artifact(EXEMPLARS_FORMAT)).get("house_edits", []))


def learned_thresholds(version: PolicyVersion | None) -> dict[str, float | None] | None:
    """A decider version's learned thresholds per category (None: ask a person), or None for
    no version (the workflow's configured thresholds apply)."""
    if version is None:
        return None
    thresholds: dict[str, float | None] = artifact(version, json_artifact(THRESHOLDS_FORMAT))[
        "thresholds"
    ]
    return thresholds
