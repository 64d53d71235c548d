"""MCP servers: the list, registering one, one server with its tools, and refreshing it.

What a server says about itself and its tools is untrusted text, escaped like any other."""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.access import Capability, require
from tools_registry.catalog import refresh_mcp_server, register_mcp_server
from tools_registry.models import McpServer, Tool


class ServerForm(forms.Form):
    """What an admin enters to register a server. Field names are the model's, so the
    service's validation errors land on the field they are about."""

    label_suffix = ""

    name = forms.SlugField(
        max_length=50,
        help_text="Letters, digits, hyphens and underscores; its tools are named “name.tool”.",
    )
    title = forms.CharField(max_length=200, required=False)
    transport = forms.ChoiceField(
        choices=[
            (McpServer.Transport.STDIO, "stdio: a command this host runs"),
            (McpServer.Transport.HTTP, "http: streamable HTTP at a URL"),
        ],
        widget=forms.RadioSelect,
    )
    command = forms.CharField(
        max_length=500, required=False, help_text="stdio: the executable this host starts."
    )
    args = forms.CharField(
        label="Arguments",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="stdio: its arguments, one per line.",
    )
    url = forms.CharField(
        label="URL", max_length=500, required=False, help_text="http: the streamable HTTP endpoint."
    )
    timeout_seconds = forms.FloatField(
        min_value=1, max_value=600, initial=30, label="Timeout (seconds)"
    )

    def clean_args(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["args"].splitlines() if line.strip()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        transport = cleaned.get("transport")
        if transport == McpServer.Transport.STDIO and not cleaned.get("command", "").strip():
            self.add_error("command", "A stdio server needs the command that starts it.")
        if transport == McpServer.Transport.HTTP and not cleaned.get("url", "").strip():
            self.add_error("url", "An HTTP server needs its URL.")
        return cleaned


@require_GET
@require(Capability.VIEW_TOOLS)
def server_list(request: HttpRequest) -> HttpResponse:
    servers = McpServer.objects.order_by("name").annotate(
        offered=Count("tools", filter=Q(tools__available=True)),
        gone=Count("tools", filter=Q(tools__available=False)),
    )
    return render(request, "console/tools/servers.html", {"servers": servers})


@require_http_methods(["GET", "POST"])
@require(Capability.ADMINISTER)
def server_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "console/tools/server_new.html", {"form": ServerForm()})
    form = ServerForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        stdio = data["transport"] == McpServer.Transport.STDIO
        try:
            server = register_mcp_server(
                name=data["name"],
                transport=data["transport"],
                actor=request.user,
                title=data["title"],
                command=data["command"].strip() if stdio else "",
                args=data["args"] if stdio else [],
                url="" if stdio else data["url"].strip(),
                timeout_seconds=data["timeout_seconds"],
            )
        except ValidationError as error:
            _add_service_errors(form, error)
        except ValueError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request, f"Server {server.name} registered. Refresh it to list its tools."
            )
            return redirect("tools:server", server_id=server.pk)
    return render(request, "console/tools/server_new.html", {"form": form}, status=400)


def _add_service_errors(form: ServerForm, error: ValidationError) -> None:
    """Each of the model's complaints on the field it names, the rest above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, problems in error.error_dict.items():
        form.add_error(field if field in form.fields else None, problems)


@require_GET
@require(Capability.VIEW_TOOLS)
def server_detail(request: HttpRequest, server_id: int) -> HttpResponse:
    server = get_object_or_404(McpServer.objects.select_related("created_by"), pk=server_id)
    tools = server.tools.select_related("server").annotate(
        active_grants=Count("grants", filter=Q(grants__revoked_at__isnull=True))
    )
    return render(request, "console/tools/server.html", {"server": server, "tools": tools})


@require_POST
@require(Capability.ADMINISTER)
def server_refresh(request: HttpRequest, server_id: int) -> HttpResponse:
    """Ask the server for its tools now and show what changed. The result is shown, not
    stored (the audit trail holds its summary)."""
    server = get_object_or_404(McpServer, pk=server_id)
    refresh = refresh_mcp_server(server_id=server.pk, actor=request.user)
    ids = dict(Tool.objects.filter(server=server).values_list("name", "pk"))

    def linked(names: list[str]) -> list[dict[str, Any]]:
        return [{"name": name, "pk": ids.get(name)} for name in sorted(names)]

    context = {
        "server": refresh.server,
        "refresh": refresh,
        "added": linked(refresh.added),
        "changed": [
            {"name": c["tool"], "pk": ids.get(c["tool"]), "fields": c["fields"]}
            for c in sorted(refresh.changed, key=lambda c: c["tool"])
        ],
        "removed": linked(refresh.removed),
        "unchanged": linked(refresh.unchanged),
    }
    return render(request, "console/tools/refresh.html", context)


urlpatterns: list[URLPattern] = [
    path("servers/", server_list, name="servers"),
    path("servers/new/", server_new, name="server_new"),
    path("servers/<int:server_id>/", server_detail, name="server"),
    path("servers/<int:server_id>/refresh/", server_refresh, name="server_refresh"),
]
