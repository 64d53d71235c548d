from django.http import HttpRequest

from console.access import Capability, can, roles_of


def console_roles(request: HttpRequest) -> dict[str, object]:
    user = request.user
    return {
        "user_roles": sorted(roles_of(user)),
        "can_view_queue": can(user, Capability.VIEW_QUEUE),
        "can_decide": can(user, Capability.DECIDE),
        "can_view_runs": can(user, Capability.VIEW_RUNS),
        "can_view_audit": can(user, Capability.VIEW_AUDIT),
        "can_view_tools": can(user, Capability.VIEW_TOOLS),
        "can_view_learning": can(user, Capability.VIEW_LEARNING),
        "can_administer": can(user, Capability.ADMINISTER),
    }
