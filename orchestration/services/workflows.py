"""Workflow versions: the definition in code becomes a stored, immutable version."""

import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from orchestration.engine.autonomy import AutonomyPolicy
from orchestration.engine.limits import Limits
from orchestration.engine.workflow import parse_definition
from orchestration.models import Workflow
from orchestration.models.runs import default_limits
from orchestration.workflows import support_desk

_version_ids: dict[str, int] = {}


def _fingerprint(definition: dict[str, Any], config: dict[str, Any]) -> str:
    parsed = parse_definition(definition)
    body = json.dumps(
        {"definition": parsed.to_dict(), "config": config}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(body.encode()).hexdigest()


def ensure_workflow_version(*, definition: dict[str, Any], config: dict[str, Any]) -> Workflow:
    """The stored version of this exact definition and config, created as the next version
    number if it is new. An unchanged definition never makes a new version; runs already in
    flight keep pointing at the version they started on."""
    parsed = parse_definition(definition)
    # Refuses unknown or malformed limits by name, against this deployment's defaults.
    Limits.from_config(config, base=default_limits())
    # Refuses a malformed target, tolerance or sampling share, with the field named.
    AutonomyPolicy.from_config(config)
    fingerprint = _fingerprint(definition, config)
    existing = Workflow.objects.filter(name=parsed.name, definition_hash=fingerprint).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            latest = Workflow.objects.filter(name=parsed.name).aggregate(v=Max("version"))["v"]
            return Workflow.objects.create(
                name=parsed.name,
                version=(latest or 0) + 1,
                definition=parsed.to_dict(),
                config=config,
                definition_hash=fingerprint,
            )
    except IntegrityError:
        # Another process registered it first; theirs is the same version.
        return Workflow.objects.get(name=parsed.name, definition_hash=fingerprint)


def support_desk_version() -> Workflow:
    """The support-desk version that new runs start on (the one the code defines)."""
    fingerprint = _fingerprint(support_desk.DEFINITION, support_desk.CONFIG)
    cached = _version_ids.get(fingerprint)
    if cached is not None:
        found = Workflow.objects.filter(pk=cached, definition_hash=fingerprint).first()
        if found:
            return found
    workflow = ensure_workflow_version(
        definition=support_desk.DEFINITION, config=support_desk.CONFIG
    )
    _version_ids[fingerprint] = workflow.pk
    return workflow
