"""Grants: which agent may call which tool, within what limits, with whose approval. Every
change goes through these functions and is audited; a revocation holds from the next call."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from orchestration.services.audit import record_event
from tools_registry.models import Grant, Tool, ToolCall
from tools_registry.policy import (
    ConstraintError,
    broken_constraints,
    needs_approval,
    parse_constraints,
)
from tools_registry.schemas import schema_problems


class GrantError(ValueError):
    """A grant change that cannot be made; ``field`` names the form field at fault."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class GrantTerms:
    """What a grant says, as submitted."""

    constraints: list[dict[str, Any]]
    approval: str = Grant.Approval.NEVER
    approval_conditions: list[dict[str, Any]] | None = None
    expires_at: datetime | None = None
    reason: str = ""


def _checked(terms: GrantTerms) -> GrantTerms:
    try:
        parse_constraints(terms.constraints)
    except ConstraintError as error:
        raise GrantError(str(error), field="constraints") from None
    conditions = terms.approval_conditions or []
    try:
        parse_constraints(conditions)
    except ConstraintError as error:
        raise GrantError(str(error), field="approval_conditions") from None
    if terms.approval not in Grant.Approval.values:
        raise GrantError(f"unknown approval rule {terms.approval!r}", field="approval")
    if terms.approval == Grant.Approval.WHEN and not conditions:
        raise GrantError("“When” needs at least one condition.", field="approval_conditions")
    if terms.expires_at is not None and terms.expires_at <= timezone.now():
        raise GrantError("The expiry is in the past.", field="expires_at")
    if not terms.reason.strip():
        raise GrantError("Say why the agent needs this tool.", field="reason")
    return GrantTerms(
        constraints=terms.constraints,
        approval=terms.approval,
        approval_conditions=conditions,
        expires_at=terms.expires_at,
        reason=terms.reason.strip(),
    )


# Tools that reach out to an address an argument names: a grant must bound it to hosts.
HOST_BOUND = {"post_webhook": "url"}


def _check_against_tool(terms: GrantTerms, tool: Tool) -> None:
    """Constraints must name arguments the tool has (a mistyped path would bind nothing),
    and a tool that posts to an address must be bound to hosts."""
    fields = (
        ("constraints", terms.constraints),
        ("approval_conditions", terms.approval_conditions or []),
    )
    for field, raw in fields:
        for constraint in parse_constraints(raw):
            if not _schema_has(tool.input_schema, constraint.path):
                raise GrantError(f"{tool.name} has no argument {constraint.path!r}", field=field)
    bound = HOST_BOUND.get(tool.name)
    if bound and not any(
        c.path == bound and c.op == "host_in" for c in parse_constraints(terms.constraints)
    ):
        raise GrantError(
            f"{tool.name} must be bound to hosts: add a constraint "
            f'{{"path": "{bound}", "op": "host_in", "value": [...]}}.',
            field="constraints",
        )


def _schema_has(schema: Any, path: str) -> bool:
    for part in path.split("."):
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(properties, dict) or part not in properties:
            return False
        schema = properties[part]
    return True


def _snapshot(grant: Grant) -> dict[str, Any]:
    return {
        "agent": grant.agent,
        "tool": grant.tool.name,
        "definition_hash": grant.definition_hash,
        "constraints": grant.constraints,
        "approval": grant.approval,
        "approval_conditions": grant.approval_conditions,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        "reason": grant.reason,
    }


def grant_tool(
    *,
    agent: str,
    tool_id: int,
    terms: GrantTerms,
    actor: AbstractBaseUser | None,
    actor_label: str = "",
) -> Grant:
    """Grant ``agent`` the tool as it is defined now."""
    terms = _checked(terms)
    if not agent.strip():
        raise GrantError("Name the agent.", field="agent")
    with transaction.atomic():
        tool = Tool.objects.select_for_update().get(pk=tool_id)
        _check_against_tool(terms, tool)
        if Grant.objects.filter(agent=agent, tool=tool, revoked_at__isnull=True).exists():
            raise GrantError(f"{agent} already holds {tool.name}; edit that grant.", field="agent")
        grant = Grant.objects.create(
            agent=agent,
            tool=tool,
            definition_hash=tool.definition_hash,
            constraints=terms.constraints,
            approval=terms.approval,
            approval_conditions=terms.approval_conditions,
            expires_at=terms.expires_at,
            granted_by=actor if actor is not None and actor.pk else None,
            granted_by_label=actor_label,
            reason=terms.reason,
        )
        record_event(
            action="grant.created",
            actor=actor,
            actor_label=actor_label,
            object_type="grant",
            object_id=grant.pk,
            after=_snapshot(grant),
        )
    return grant


def change_grant(*, grant_id: int, terms: GrantTerms, actor: AbstractBaseUser) -> Grant:
    """Change a grant's terms; it is pinned again to the tool's current definition, so an
    admin's edit is also how a grant is renewed after the tool changed."""
    terms = _checked(terms)
    with transaction.atomic():
        grant = Grant.objects.select_for_update().select_related("tool").get(pk=grant_id)
        if grant.revoked_at is not None:
            raise GrantError("This grant was revoked; grant the tool anew.")
        _check_against_tool(terms, grant.tool)
        before = _snapshot(grant)
        grant.constraints = terms.constraints
        grant.approval = terms.approval
        grant.approval_conditions = terms.approval_conditions or []
        grant.expires_at = terms.expires_at
        grant.reason = terms.reason
        grant.definition_hash = grant.tool.definition_hash
        grant.save()
        record_event(
            action="grant.changed",
            actor=actor,
            object_type="grant",
            object_id=grant.pk,
            before=before,
            after=_snapshot(grant),
        )
    return grant


def revoke_grant(*, grant_id: int, actor: AbstractBaseUser, reason: str) -> Grant:
    """Revoke a grant; the agent's next call of the tool is refused."""
    if not reason.strip():
        raise GrantError("Say why the grant is revoked.", field="reason")
    with transaction.atomic():
        grant = Grant.objects.select_for_update().select_related("tool").get(pk=grant_id)
        if grant.revoked_at is not None:
            return grant
        grant.revoked_at = timezone.now()
        grant.revoked_by = actor
        grant.revoke_reason = reason.strip()
        grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        record_event(
            action="grant.revoked",
            actor=actor,
            object_type="grant",
            object_id=grant.pk,
            before=_snapshot(grant),
            after={"revoked": True, "reason": grant.revoke_reason},
        )
    return grant


def active_grants() -> QuerySet[Grant]:
    return Grant.objects.filter(revoked_at__isnull=True).select_related("tool", "granted_by")


def needs_review(grant: Grant, now: datetime | None = None) -> bool:
    """Expiring within GRANT_REVIEW_DAYS, or pinned to a definition the tool no longer has."""
    now = now or timezone.now()
    soon = now + timedelta(days=settings.GRANT_REVIEW_DAYS)
    expiring = grant.expires_at is not None and grant.expires_at <= soon
    return expiring or grant.definition_hash != grant.tool.definition_hash


@dataclass(frozen=True)
class ChangedCall:
    call: ToolCall
    before: str
    after: str


def _decide(grant_terms: GrantTerms | None, call: ToolCall, tool: Tool) -> str:
    """How the gate's grant checks would decide a recorded call under these terms."""
    if grant_terms is None:
        return "deny"
    if grant_terms.expires_at is not None and grant_terms.expires_at <= timezone.now():
        return "deny"
    arguments = call.arguments or {}
    if schema_problems(tool.input_schema, arguments):
        return "deny"
    if broken_constraints(parse_constraints(grant_terms.constraints), arguments):
        return "deny"
    conditions = parse_constraints(grant_terms.approval_conditions or [])
    return "ask" if needs_approval(grant_terms.approval, conditions, arguments) else "allow"


def dry_run_change(
    *, agent: str, tool: Tool, current: Grant | None, proposed: GrantTerms | None, last: int = 200
) -> list[ChangedCall]:
    """Of the last ``last`` recorded calls of ``tool`` by ``agent``, those the proposed
    terms (None: revoked) would decide differently from the current grant."""
    proposed = _checked(proposed) if proposed is not None else None
    now_terms = None
    if current is not None and current.revoked_at is None:
        now_terms = GrantTerms(
            constraints=current.constraints,
            approval=current.approval,
            approval_conditions=current.approval_conditions,
            expires_at=current.expires_at,
            reason=current.reason,
        )
    calls = ToolCall.objects.filter(agent=agent, tool=tool.name).order_by("-id")[:last]
    changed = []
    for call in calls:
        before, after = _decide(now_terms, call, tool), _decide(proposed, call, tool)
        if before != after:
            changed.append(ChangedCall(call, before, after))
    return changed
