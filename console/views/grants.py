"""Grants: the agents × tools matrix, grant forms and the policy dry run.

Every change goes through the grant services (``grant_tool``, ``change_grant``,
``revoke_grant``), which check the terms and write the audit trail. A preview runs
``dry_run_change`` over the recorded calls and writes nothing. Agent arguments and reasons
are untrusted text: the templates escape them and nothing here marks them safe."""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from console.access import Capability, require
from console.forms_grants import OPERATOR_HELP, GrantForm, RevokeForm
from orchestration.agents.registry import AGENTS
from orchestration.models import AuditEvent
from tools_registry.grants import (
    ChangedCall,
    GrantError,
    active_grants,
    change_grant,
    dry_run_change,
    grant_tool,
    needs_review,
    revoke_grant,
)
from tools_registry.models import Grant, Tool, ToolCall
from tools_registry.policy import ConstraintError, parse_constraints

# How many of the latest recorded calls a dry run looks at.
DRY_RUN_CALLS = 200


@dataclass
class GrantSummary:
    """A grant as the matrix and the detail page put it in words."""

    grant: Grant
    constraints: list[str]
    approval: str
    expired: bool
    review: bool
    # Why it is flagged for review, in words.
    review_reasons: list[str] = field(default_factory=list)


def _described(raw: object) -> list[str]:
    try:
        return [constraint.describe() for constraint in parse_constraints(raw)]
    except ConstraintError as problem:
        return [f"unreadable: {problem}"]


def summarise(grant: Grant, now: datetime) -> GrantSummary:
    if grant.approval == Grant.Approval.WHEN:
        approval = "ask when " + " and ".join(_described(grant.approval_conditions))
    elif grant.approval == Grant.Approval.ALWAYS:
        approval = "always ask"
    else:
        approval = "never ask"
    expired = grant.expires_at is not None and grant.expires_at <= now
    reasons = []
    if grant.definition_hash != grant.tool.definition_hash:
        reasons.append("the tool's definition changed since it was granted")
    if expired:
        reasons.append("expired")
    elif grant.expires_at is not None and needs_review(grant, now):
        reasons.append("expires soon")
    return GrantSummary(
        grant=grant,
        constraints=_described(grant.constraints),
        approval=approval,
        expired=expired,
        review=grant.revoked_at is None and needs_review(grant, now),
        review_reasons=reasons,
    )


@require_GET
@require(Capability.VIEW_TOOLS)
def matrix(request: HttpRequest) -> HttpResponse:
    """Agents down, tools across, one cell per pair. Agents that hold a grant but are not in
    the registry still get a row: no active grant is ever left off the page."""
    now = timezone.now()
    summaries = {(g.agent, g.tool_id): summarise(g, now) for g in active_grants()}
    holders = {agent for agent, _ in summaries}
    agents = [*AGENTS, *sorted(holders - set(AGENTS))]
    tools = list(Tool.objects.order_by("name"))
    rows = [
        {"agent": agent, "cells": [(tool, summaries.get((agent, tool.pk))) for tool in tools]}
        for agent in agents
    ]
    flagged = sorted(
        (s for s in summaries.values() if s.review),
        key=lambda s: (s.grant.expires_at or now, s.grant.agent, s.grant.tool.name),
    )
    context = {"tools": tools, "rows": rows, "flagged": flagged}
    return render(request, "console/grants/matrix.html", context)


def _grant(grant_id: int) -> Grant:
    return get_object_or_404(
        Grant.objects.select_related("tool", "granted_by", "revoked_by"), pk=grant_id
    )


@require_GET
@require(Capability.VIEW_TOOLS)
def grant_detail(request: HttpRequest, grant_id: int) -> HttpResponse:
    grant = _grant(grant_id)
    history = AuditEvent.objects.filter(object_type="grant", object_id=str(grant.pk)).order_by(
        "sequence"
    )
    context = {
        "grant": grant,
        "summary": summarise(grant, timezone.now()),
        "pinned_current": grant.definition_hash == grant.tool.definition_hash,
        "history": history.select_related("actor"),
    }
    return render(request, "console/grants/detail.html", context)


@require_http_methods(["GET", "POST"])
@require(Capability.ADMINISTER)
def grant_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        form = GrantForm(
            initial={
                "agent": request.GET.get("agent", ""),
                "tool": request.GET.get("tool", ""),
                "constraints": [],
                "approval_conditions": [],
            }
        )
        return _form_page(request, form)
    form = GrantForm(request.POST)
    if not form.is_valid():
        return _form_page(request, form, status=400)
    agent, tool = form.chosen()
    held = active_grants().filter(agent=agent, tool=tool).first()
    if held is not None:
        form.add_error("agent", f"{agent} already holds {tool.name}; edit that grant.")
        return _form_page(request, form, status=400, held=held)
    if "preview" in request.POST:
        return _preview(request, form, current=None)
    try:
        grant = grant_tool(agent=agent, tool_id=tool.pk, terms=form.terms(), actor=request.user)
    except GrantError as error:
        return _refused(request, form, error)
    messages.success(request, f"{grant.agent} may now call {grant.tool.name}.")
    return redirect("grants:detail", grant_id=grant.pk)


@require_http_methods(["GET", "POST"])
@require(Capability.ADMINISTER)
def grant_edit(request: HttpRequest, grant_id: int) -> HttpResponse:
    """Saving also pins the grant to the tool's current definition: an edit is how a grant
    is renewed after the tool changed."""
    grant = _grant(grant_id)
    if grant.revoked_at is not None:
        messages.error(request, "This grant was revoked; grant the tool anew.")
        return redirect("grants:detail", grant_id=grant.pk)
    if request.method == "GET":
        return _form_page(request, GrantForm.for_grant(grant))
    form = GrantForm(request.POST, grant=grant)
    if not form.is_valid():
        return _form_page(request, form, status=400)
    if "preview" in request.POST:
        return _preview(request, form, current=grant)
    try:
        change_grant(grant_id=grant.pk, terms=form.terms(), actor=request.user)
    except GrantError as error:
        return _refused(request, form, error)
    messages.success(request, f"The grant of {grant.tool.name} to {grant.agent} is changed.")
    return redirect("grants:detail", grant_id=grant.pk)


def _preview(request: HttpRequest, form: GrantForm, *, current: Grant | None) -> HttpResponse:
    """The form again, with the recorded calls the proposed terms would decide differently.
    Nothing is saved."""
    agent, tool = form.chosen()
    try:
        changes = dry_run_change(
            agent=agent, tool=tool, current=current, proposed=form.terms(), last=DRY_RUN_CALLS
        )
    except GrantError as error:
        return _refused(request, form, error)
    return _form_page(request, form, dry_run=_dry_run(agent, tool, changes))


def _refused(request: HttpRequest, form: GrantForm, error: GrantError) -> HttpResponse:
    form.add_error(error.field if error.field in form.fields else None, str(error))
    return _form_page(request, form, status=400)


def _dry_run(agent: str, tool: Tool, changes: list[ChangedCall]) -> dict[str, object]:
    considered = ToolCall.objects.filter(agent=agent, tool=tool.name).count()
    return {
        "changes": changes,
        "considered": min(considered, DRY_RUN_CALLS),
        "agent": agent,
        "tool": tool,
    }


def _form_page(
    request: HttpRequest,
    form: GrantForm,
    *,
    status: int = 200,
    dry_run: dict[str, object] | None = None,
    held: Grant | None = None,
) -> HttpResponse:
    context = {
        "form": form,
        "grant": form.grant,
        "operators": OPERATOR_HELP,
        "dry_run": dry_run,
        "held": held,
        "timezone": timezone.get_current_timezone_name(),
    }
    return render(request, "console/grants/form.html", context, status=status)


@require_http_methods(["GET", "POST"])
@require(Capability.ADMINISTER)
def grant_revoke(request: HttpRequest, grant_id: int) -> HttpResponse:
    """The confirm page shows which recorded calls would now be refused; the POST revokes,
    and the agent's next call of the tool is refused by the gate."""
    grant = _grant(grant_id)
    if grant.revoked_at is not None:
        messages.info(request, "This grant is already revoked.")
        return redirect("grants:detail", grant_id=grant.pk)
    form = RevokeForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            revoke_grant(grant_id=grant.pk, actor=request.user, reason=form.cleaned_data["reason"])
        except GrantError as error:
            form.add_error("reason", str(error))
        else:
            messages.success(
                request,
                f"Revoked: {grant.agent}'s next call of {grant.tool.name} is refused.",
            )
            return redirect("grants:detail", grant_id=grant.pk)
    changes = dry_run_change(
        agent=grant.agent, tool=grant.tool, current=grant, proposed=None, last=DRY_RUN_CALLS
    )
    context = {
        "grant": grant,
        "summary": summarise(grant, timezone.now()),
        "form": form,
        "dry_run": _dry_run(grant.agent, grant.tool, changes),
    }
    return render(
        request,
        "console/grants/revoke.html",
        context,
        status=400 if form.is_bound else 200,
    )


urlpatterns: list[URLPattern] = [
    path("", matrix, name="matrix"),
    path("new/", grant_new, name="new"),
    path("<int:grant_id>/", grant_detail, name="detail"),
    path("<int:grant_id>/edit/", grant_edit, name="edit"),
    path("<int:grant_id>/revoke/", grant_revoke, name="revoke"),
]
