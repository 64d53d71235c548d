"""The audit trail, newest first."""

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.access import Capability, require
from orchestration.models import AuditEvent

PAGE_SIZE = 50


@require_GET
@require(Capability.VIEW_AUDIT)
def audit_list(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.select_related("actor").order_by("-sequence")
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action=action)
    actions = AuditEvent.objects.order_by().values_list("action", flat=True).distinct()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "console/audit/list.html",
        {
            "page": page,
            "action": action,
            "actions": sorted(set(actions)),
            "query": urlencode({"action": action}) if action else "",
        },
    )
