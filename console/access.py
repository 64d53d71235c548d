"""Who may do what. Every view, API endpoint and websocket consumer asks here first.

Roles are Django groups. An operator works the queue and decides; an admin does everything
an operator does and administers; an auditor reads everything and changes nothing; an
integration account may only submit tickets through the API."""

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

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
    # The tool catalogue, grants, MCP servers and policy violations, read-only.
    VIEW_TOOLS = "view_tools"
    # The learned versions, their evaluations, the learner's settings and exemplars, read-only.
    VIEW_LEARNING = "view_learning"
    ADMINISTER = "administer"


CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.OPERATOR: frozenset({Capability.VIEW_QUEUE, Capability.DECIDE, Capability.VIEW_RUNS}),
    Role.ADMIN: frozenset(Capability),
    Role.AUDITOR: frozenset(
        {
            Capability.VIEW_QUEUE,
            Capability.VIEW_RUNS,
            Capability.VIEW_AUDIT,
            Capability.VIEW_TOOLS,
            Capability.VIEW_LEARNING,
        }
    ),
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
                # Signing in ends with a GET of ``next``: only a page that was fetched can be
                # returned to; a form that was posted (say, a decision) cannot be replayed.
                if request.method in ("GET", "HEAD"):
                    return redirect_to_login(request.get_full_path())
                return redirect_to_login("/")
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


class RolePermissionBackend:
    """Lets the admin role use Django admin without per-model permissions or flags: the role
    is the one source of truth, whoever put the user in the group. Authenticates nobody."""

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        return None

    def has_perm(self, user: AbstractBaseUser, perm: str, obj: Any = None) -> bool:
        return can(user, Capability.ADMINISTER)

    def has_module_perms(self, user: AbstractBaseUser, app_label: str) -> bool:
        return can(user, Capability.ADMINISTER)


def admin_site_permission(request: HttpRequest) -> bool:
    """Django admin opens for the admin role, and only for it."""
    return can(request.user, Capability.ADMINISTER)
