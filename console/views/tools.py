"""The tool catalogue, one tool's definition, its kill switch, and the policy-violation log.

Everything a tool's source says about it (names, descriptions, schemas, hints) is untrusted
text: the templates escape it and nothing here marks it safe."""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from console.access import Capability, require
from console.views import mcp_servers
from tools_registry.catalog import set_tool_enabled
from tools_registry.grants import needs_review
from tools_registry.models import Grant, McpServer, PolicyViolation, Tool, ToolCall
from tools_registry.policy import ConstraintError, parse_constraints

PAGE_SIZE = 50
RECENT_CALLS = 20


class CatalogueFilter(forms.Form):
    """``source`` is "builtin", "mcp" (any server) or "mcp:<server name>"."""

    source = forms.ChoiceField(required=False)
    risk = forms.ChoiceField(choices=[("", "All risks"), *Tool.Risk.choices], required=False)

    def __init__(self, *args: Any, servers: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [
            ("", "All sources"),
            ("builtin", "Built-in"),
            ("mcp", "Any MCP server"),
            *[(f"mcp:{name}", f"MCP: {name}") for name in servers],
        ]


def catalogued_tools() -> QuerySet[Tool]:
    """Tools with their server and how many grants are active (not revoked) for each."""
    return Tool.objects.select_related("server").annotate(
        active_grants=Count("grants", filter=Q(grants__revoked_at__isnull=True))
    )


@require_GET
@require(Capability.VIEW_TOOLS)
def catalogue(request: HttpRequest) -> HttpResponse:
    """An invalid filter value is dropped and shown as "All", so the list always matches
    what the filter form shows."""
    servers = list(McpServer.objects.order_by("name").values_list("name", flat=True))
    filters = CatalogueFilter(request.GET, servers=servers)
    filters.is_valid()
    chosen = filters.cleaned_data
    tools = catalogued_tools().order_by("source", "name")
    source = chosen.get("source", "")
    if source == "builtin":
        tools = tools.filter(source=Tool.Source.BUILTIN)
    elif source == "mcp":
        tools = tools.filter(source=Tool.Source.MCP)
    elif source.startswith("mcp:"):
        tools = tools.filter(source=Tool.Source.MCP, server__name=source.removeprefix("mcp:"))
    if chosen.get("risk"):
        tools = tools.filter(risk=chosen["risk"])
    return render(request, "console/tools/catalogue.html", {"tools": tools, "filters": filters})


@require_GET
@require(Capability.VIEW_TOOLS)
def tool_detail(request: HttpRequest, tool_id: int) -> HttpResponse:
    tool = get_object_or_404(Tool.objects.select_related("server"), pk=tool_id)
    now = timezone.now()
    grants = tool.grants.filter(revoked_at__isnull=True).select_related("tool", "granted_by")
    calls = ToolCall.objects.filter(tool=tool.name).order_by("-id")
    context = {
        "tool": tool,
        "grants": [
            {
                "grant": grant,
                "constraints": _described(grant.constraints),
                "approval": _approval_rule(grant),
                "review": needs_review(grant, now),
                "stale": grant.definition_hash != tool.definition_hash,
                "expired": grant.expires_at is not None and grant.expires_at <= now,
            }
            for grant in grants
        ],
        "calls": list(calls[:RECENT_CALLS]),
        "recent_calls": RECENT_CALLS,
    }
    return render(request, "console/tools/detail.html", context)


def _described(raw: object) -> list[str]:
    """Constraints as the gate words them ("amount is at most 500")."""
    try:
        return [constraint.describe() for constraint in parse_constraints(raw)]
    except ConstraintError as problem:
        return [f"unreadable: {problem}"]


def _approval_rule(grant: Grant) -> str:
    if grant.approval == Grant.Approval.ALWAYS:
        return "a person approves every call"
    if grant.approval == Grant.Approval.WHEN:
        return "a person approves when " + " and ".join(_described(grant.approval_conditions))
    return "no approval asked"


class ToggleForm(forms.Form):
    enabled = forms.TypedChoiceField(
        choices=[("on", "on"), ("off", "off")], coerce=lambda value: value == "on"
    )
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why the tool is switched on or off."},
    )


@require_http_methods(["GET", "POST"])
@require(Capability.ADMINISTER)
def tool_toggle(request: HttpRequest, tool_id: int) -> HttpResponse:
    """The kill switch. The GET page says what the switch does and asks why; the POST names
    the state it wants (not "flip"), so two admins switching off at once both get "off"."""
    tool = get_object_or_404(Tool, pk=tool_id)
    if request.method == "GET":
        form = ToggleForm(initial={"enabled": "off" if tool.enabled else "on"})
        return _toggle_page(request, tool, form, switch_on=not tool.enabled)
    form = ToggleForm(request.POST)
    if not form.is_valid():
        return _toggle_page(request, tool, form, switch_on=not tool.enabled, status=400)
    enabled: bool = form.cleaned_data["enabled"]
    was = tool.enabled
    try:
        tool = set_tool_enabled(
            tool_id=tool.pk, enabled=enabled, actor=request.user, reason=form.cleaned_data["reason"]
        )
    except ValueError as problem:
        form.add_error("reason", str(problem))
        return _toggle_page(request, tool, form, switch_on=enabled, status=400)
    if was == enabled:
        messages.info(request, f"{tool.name} was already switched {'on' if enabled else 'off'}.")
    elif enabled:
        messages.success(request, f"{tool.name} is switched on again.")
    else:
        messages.success(
            request, f"{tool.name} is switched off: every agent's next call of it is refused."
        )
    return redirect("tools:detail", tool_id=tool.pk)


def _toggle_page(
    request: HttpRequest, tool: Tool, form: ToggleForm, *, switch_on: bool, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "console/tools/toggle.html",
        {"tool": tool, "form": form, "switch_on": switch_on},
        status=status,
    )


class ViolationFilter(forms.Form):
    check = forms.ChoiceField(
        choices=[("", "All checks"), *[(c, c.replace("_", " ")) for c in PolicyViolation.Check]],
        required=False,
    )
    agent = forms.CharField(required=False, max_length=63)
    tool = forms.CharField(required=False, max_length=150)


def _options(values: QuerySet[PolicyViolation, str], chosen: str) -> list[str]:
    """The values to offer in a filter's list: those on record, plus the one asked for, so
    the form shows the filter that applies even when nothing matches it."""
    options = set(values)
    if chosen:
        options.add(chosen)
    return sorted(options)


@require_GET
@require(Capability.VIEW_TOOLS)
def violations(request: HttpRequest) -> HttpResponse:
    """Newest first. An unknown check is dropped (shown as "All checks"); an agent or tool
    with no violations filters to an empty list."""
    filters = ViolationFilter(request.GET)
    filters.is_valid()
    chosen = filters.cleaned_data
    found = PolicyViolation.objects.order_by("-created_at", "-id")
    for field, column in (("check", "failed_check"), ("agent", "agent"), ("tool", "tool")):
        if chosen.get(field):
            found = found.filter(**{column: chosen[field]})
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    # Link a violation's tool to its page when the catalogue holds it.
    names = {v.tool for v in page.object_list}
    tool_ids = dict(Tool.objects.filter(name__in=names).values_list("name", "pk"))
    for violation in page.object_list:
        violation.tool_pk = tool_ids.get(violation.tool)
    everything = PolicyViolation.objects.order_by()
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "filters": filters,
        "chosen": chosen,
        "agents": _options(
            everything.values_list("agent", flat=True).distinct(), chosen.get("agent", "")
        ),
        "tools": _options(
            everything.values_list("tool", flat=True).distinct(), chosen.get("tool", "")
        ),
        "query": query.urlencode(),
    }
    return render(request, "console/tools/violations.html", context)


urlpatterns: list[URLPattern] = [
    path("", catalogue, name="catalogue"),
    path("<int:tool_id>/", tool_detail, name="detail"),
    path("<int:tool_id>/toggle/", tool_toggle, name="toggle"),
    path("violations/", violations, name="violations"),
    *mcp_servers.urlpatterns,
]
