"""One learned version's page (lineage, evaluation, what it learned from, the shadow view of a
candidate) and the admins' switches: promote, roll back, make active again.

The page is the confirmation step: it shows what switching would change before the button
that does it. Each switch is a plain POST to one service function, whose refusal is shown as
a message on the page the admin comes back to."""

import json
import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_POST

from console.access import Capability, require
from console.views.learning_metrics import DETAIL_ROWS, cells, evaluated, failures
from orchestration.learning.active import DECIDER, THRESHOLDS_FORMAT
from orchestration.learning.shadow import Shadow, shadow
from orchestration.models import PolicyVersion
from orchestration.services.learning import (
    LearningError,
    promote_version,
    reactivate,
    roll_back,
    rollback_target,
)

log = logging.getLogger(__name__)
DECISIONS_PER_PAGE = 25
# What an agent does once its only learned version is rolled back.
WITHOUT_VERSION = {
    "drafter": "the drafter drafts without exemplars",
    "decider": "the decider uses the workflow's configured thresholds",
}


def _version(version_id: int) -> PolicyVersion:
    return get_object_or_404(
        PolicyVersion.objects.defer("artifact").select_related("promoted_by", "baseline", "cycle"),
        pk=version_id,
    )


def decider_thresholds(version: PolicyVersion) -> list[dict[str, Any]] | None:
    """A decider version's threshold per category with the evidence behind it."""
    if version.agent != DECIDER:
        return None
    blob = PolicyVersion.objects.values_list("artifact", flat=True).get(pk=version.pk)
    try:
        payload = json.loads(bytes(blob))
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("format") != THRESHOLDS_FORMAT:
        return None
    chosen = payload.get("thresholds") or {}
    evidence = payload.get("evidence") or {}
    return [
        {"category": category, "threshold": chosen[category], **(evidence.get(category) or {})}
        for category in sorted(chosen)
    ]


def _shadow(version: PolicyVersion) -> tuple[Shadow | None, str]:
    """The shadow view of a candidate, or why there is none."""
    if version.status != PolicyVersion.Status.CANDIDATE:
        return None, ""
    try:
        return shadow(version), ""
    except Exception as problem:
        # An artifact that does not load (another scikit-learn, a damaged blob) must not
        # take the rest of the page, and the buttons on it, down with it.
        log.exception("shadow view of %s", version)
        return None, f"The shadow view could not be made: {problem}"


def _learned_from(request: HttpRequest, version: PolicyVersion) -> Any:
    decisions = version.learned_from.select_related("task", "actor").order_by("-pk")
    page = Paginator(decisions, DECISIONS_PER_PAGE).get_page(request.GET.get("page"))
    codes: dict[str, str] = settings.FEEDBACK_REASON_CODES
    page.object_list = [
        {
            "decision": d,
            "codes": [codes.get(str(c), str(c)) for c in d.reason_codes]
            if isinstance(d.reason_codes, list)
            else [],
        }
        for d in page.object_list
    ]
    return page


@require_GET
@require(Capability.VIEW_LEARNING)
def version_detail(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version(version_id)
    active = (
        PolicyVersion.objects.filter(agent=version.agent, status=PolicyVersion.Status.ACTIVE)
        .defer("artifact")
        .first()
    )
    found_shadow, shadow_error = _shadow(version)
    is_active = version.status == PolicyVersion.Status.ACTIVE
    context = {
        "version": version,
        "active": active,
        # Metrics neither version was scored on are left out.
        "cells": [
            c for c in cells(version, DETAIL_ROWS) if c.value != "–" or c.baseline not in ("", "–")
        ],
        "evaluated": evaluated(version),
        "passed": bool((version.evaluation or {}).get("passed")),
        "failures": failures(version),
        "lineage": sorted((version.lineage or {}).items()),
        "thresholds": decider_thresholds(version),
        "page": _learned_from(request, version),
        "shadow": found_shadow,
        "shadow_error": shadow_error,
        # Promotion is refused once the version it was judged against is no longer in use.
        "stale_baseline": (active.pk if active else None) != version.baseline_id,
        "rollback_to": rollback_target(version) if is_active else None,
        "without_version": WITHOUT_VERSION.get(version.agent, ""),
        "can_reactivate": version.status == PolicyVersion.Status.RETIRED,
    }
    return render(request, "console/learning/version.html", context)


@require_POST
@require(Capability.ADMINISTER)
def version_promote(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version(version_id)
    try:
        promote_version(version_id=version.pk, actor=request.user)
    except LearningError as problem:
        messages.error(request, str(problem))
    else:
        messages.success(
            request,
            f"{version.agent} v{version.version} is active: the agent uses it from its next "
            "step on.",
        )
    return redirect("learning:version", version_id=version.pk)


@require_POST
@require(Capability.ADMINISTER)
def version_roll_back(request: HttpRequest, version_id: int) -> HttpResponse:
    """Rolls back the version the admin was looking at: if another became active since,
    nothing changes."""
    version = _version(version_id)
    try:
        back = roll_back(version_id=version.pk, actor=request.user)
    except LearningError as problem:
        messages.error(request, str(problem))
        return redirect("learning:version", version_id=version.pk)
    if back is None:
        messages.success(
            request,
            f"Rolled back: {version.agent} v{version.version} is retired and "
            f"{WITHOUT_VERSION.get(version.agent, 'no learned version is in use')}.",
        )
        return redirect("learning:version", version_id=version.pk)
    messages.success(
        request,
        f"Rolled back: {back.agent} v{back.version} is active again; "
        f"v{version.version} is retired.",
    )
    return redirect("learning:version", version_id=back.pk)


@require_POST
@require(Capability.ADMINISTER)
def version_reactivate(request: HttpRequest, version_id: int) -> HttpResponse:
    version = _version(version_id)
    try:
        reactivate(version_id=version.pk, actor=request.user)
    except LearningError as problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, f"{version.agent} v{version.version} is active again.")
    return redirect("learning:version", version_id=version.pk)


urlpatterns: list[URLPattern] = [
    path("versions/<int:version_id>/", version_detail, name="version"),
    path("versions/<int:version_id>/promote/", version_promote, name="promote"),
    path("versions/<int:version_id>/roll-back/", version_roll_back, name="roll_back"),
    path("versions/<int:version_id>/reactivate/", version_reactivate, name="reactivate"),
]
