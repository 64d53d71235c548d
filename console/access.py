"""Who may do what. Every view, API endpoint and websocket consumer asks here first.

Roles are Django groups. An operator works the queue and decides; an admin does everything
an operator does and administers; an auditor reads everything and changes nothing; an
integration account may only submit tickets through the API."""

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from orchestration.models import HumanTask, Run


class Role(StrEnum):
    OPERATOR = "operator"
    ADMIN = "admin"
    AUDITOR = "auditor"
    INTEGRATION = "integration"


class Capability(StrEnum):
    VIEW_QUEUE = "view_queue"
    DECIDE = "decide"
    VIEW_RUNS = "view_runs"
    VIEW_AUDIT = "view_audit"
    INGEST = "ingest"


CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.OPERATOR: frozenset({Capability.VIEW_QUEUE, Capability.DECIDE, Capability.VIEW_RUNS}),
    Role.ADMIN: frozenset(Capability),
    Role.AUDITOR: frozenset({Capability.VIEW_QUEUE, Capability.VIEW_RUNS, Capability.VIEW_AUDIT}),
    Role.INTEGRATION: frozenset({Capability.INGEST}),
}


def roles_of(user: AbstractBaseUser | AnonymousUser) -> frozenset[Role]:
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached: frozenset[Role] | None = getattr(user, "_switchboard_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
        cached = frozenset(r for r in Role if r.value in names)
        if user.is_superuser:  # type: ignore[attr-defined]
            cached |= {Role.ADMIN}
        user._switchboard_roles = cached  # type: ignore[union-attr]
    return cached


def can(user: AbstractBaseUser | AnonymousUser, capability: Capability) -> bool:
    return any(capability in CAPABILITIES[role] for role in roles_of(user))


def require(capability: Capability) -> Callable[..., Callable[..., HttpResponse]]:
    """View decorator: anonymous users go to the login page, users without the capability
    get 403."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect(f"/login/?next={request.path}")
            if not can(request.user, capability):
                raise PermissionDenied(f"your role does not allow {capability}")
            return view(request, *args, **kwargs)

        return checked

    return decorate


def access_task(
    user: AbstractBaseUser | AnonymousUser, task_id: int, *, to_decide: bool = False
) -> HumanTask:
    """The task, if the user may see it (and decide it, with ``to_decide``); else 403/404."""
    needed = Capability.DECIDE if to_decide else Capability.VIEW_QUEUE
    if not can(user, needed):
        raise PermissionDenied(f"your role does not allow {needed}")
    try:
        return HumanTask.objects.select_related("run__ticket", "decision__actor").get(pk=task_id)
    except HumanTask.DoesNotExist:
        from django.http import Http404

        raise Http404("no such task") from None


def access_run(user: AbstractBaseUser | AnonymousUser, run_id: int) -> Run:
    if not can(user, Capability.VIEW_RUNS):
        raise PermissionDenied("your role does not allow view_runs")
    try:
        return Run.objects.select_related("ticket", "workflow").get(pk=run_id)
    except Run.DoesNotExist:
        from django.http import Http404

        raise Http404("no such run") from None
