"""The tool catalogue: built-in tools as this version defines them, MCP servers' tools as
their servers describe them, and the kill switch. Every change is audited."""

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from orchestration.services.audit import record_event
from tools_registry.builtin import BUILTIN_TOOLS
from tools_registry.models import McpServer, Tool
from tools_registry.policy import definition_hash


def sync_builtin_tools() -> list[Tool]:
    """Store or update the built-in tools; an admin's kill switch and limits are kept."""
    stored = []
    for builtin in BUILTIN_TOOLS.values():
        digest = definition_hash(
            name=builtin.name,
            title=builtin.title,
            description=builtin.description,
            input_schema=builtin.input_schema,
            output_schema=builtin.output_schema,
            annotations={},
        )
        tool, created = Tool.objects.get_or_create(
            name=builtin.name,
            defaults={
                "source": Tool.Source.BUILTIN,
                "definition_changed_at": timezone.now(),
                "definition_hash": digest,
                "risk": builtin.risk,
                "timeout_seconds": builtin.timeout_seconds,
                "rate_limit_per_minute": builtin.rate_limit_per_minute,
            },
        )
        fields = {
            "title": builtin.title,
            "description": builtin.description,
            "input_schema": builtin.input_schema,
            "output_schema": builtin.output_schema,
            "risk": builtin.risk,
            "idempotent": builtin.idempotent,
        }
        if (
            created
            or tool.definition_hash != digest
            or any(getattr(tool, k) != v for k, v in fields.items())
        ):
            if tool.definition_hash != digest:
                tool.definition_changed_at = timezone.now()
            for k, v in fields.items():
                setattr(tool, k, v)
            tool.definition_hash = digest
            tool.save()
        stored.append(tool)
    return stored


def set_tool_enabled(*, tool_id: int, enabled: bool, actor: AbstractBaseUser, reason: str) -> Tool:
    """The kill switch: a disabled tool is refused at its next call, mid-run or not."""
    if not reason.strip():
        raise ValueError("Say why the tool is switched on or off.")
    with transaction.atomic():
        tool = Tool.objects.select_for_update().get(pk=tool_id)
        if tool.enabled == enabled:
            return tool
        tool.enabled = enabled
        tool.save(update_fields=["enabled"])
        record_event(
            action="tool.enabled" if enabled else "tool.disabled",
            actor=actor,
            object_type="tool",
            object_id=tool.pk,
            before={"enabled": not enabled},
            after={"enabled": enabled, "tool": tool.name, "reason": reason.strip()},
        )
    return tool


@dataclass
class Refresh:
    """What a refresh of an MCP server found, for the person who asked."""

    server: McpServer
    added: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    error: str = ""


def _risk_from_hints(hints: dict[str, Any]) -> str:
    # Hints suggest; they are not trusted to lower the risk below "write" unless read-only.
    if hints.get("readOnlyHint") is True:
        return Tool.Risk.READ
    if hints.get("destructiveHint") is False:
        return Tool.Risk.WRITE
    return Tool.Risk.IRREVERSIBLE


def refresh_mcp_server(*, server_id: int, actor: AbstractBaseUser | None) -> Refresh:
    """List the server's tools and store them: new tools arrive switched on but granted to
    nobody; a tool whose definition changed gets its new hash, so grants pinned to the old
    one stop covering it; a tool the server no longer offers is marked unavailable."""
    from tools_registry import mcp_client
    from tools_registry.executors import endpoint_for

    server = McpServer.objects.get(pk=server_id)
    refresh = Refresh(server=server)
    try:
        remote = mcp_client.list_tools(endpoint_for(server), timeout=server.timeout_seconds)
    except (mcp_client.McpUnavailable, mcp_client.McpCallFailed, ValueError) as error:
        refresh.error = str(error)
        McpServer.objects.filter(pk=server.pk).update(last_error=refresh.error[:2000])
        return refresh
    now = timezone.now()
    seen = set()
    with transaction.atomic():
        for item in remote:
            name = f"{server.name}.{item.name}"
            seen.add(name)
            digest = definition_hash(
                name=item.name,
                title=item.title,
                description=item.description,
                input_schema=item.input_schema,
                output_schema=item.output_schema,
                annotations=item.annotations,
            )
            definition = {
                "remote_name": item.name,
                "title": item.title,
                "description": item.description,
                "input_schema": item.input_schema,
                "output_schema": item.output_schema,
                "annotations": item.annotations,
                "available": True,
            }
            tool = Tool.objects.filter(name=name).first()
            if tool is None:
                Tool.objects.create(
                    name=name,
                    source=Tool.Source.MCP,
                    server=server,
                    definition_hash=digest,
                    definition_changed_at=now,
                    risk=_risk_from_hints(item.annotations),
                    # A hint is not trusted to allow repeating a call that may act.
                    idempotent=_risk_from_hints(item.annotations) == Tool.Risk.READ,
                    timeout_seconds=server.timeout_seconds,
                    **definition,
                )
                refresh.added.append(name)
            elif tool.definition_hash != digest or not tool.available:
                before = {k: getattr(tool, k) for k in definition}
                changes = sorted(k for k in definition if before[k] != definition[k])
                for k, v in definition.items():
                    setattr(tool, k, v)
                tool.definition_hash = digest
                tool.definition_changed_at = now
                tool.save()
                refresh.changed.append({"tool": name, "fields": changes})
            else:
                refresh.unchanged.append(name)
        gone = Tool.objects.filter(server=server, available=True).exclude(name__in=seen)
        refresh.removed = sorted(gone.values_list("name", flat=True))
        gone.update(available=False)
        McpServer.objects.filter(pk=server.pk).update(refreshed_at=now, last_error="")
        record_event(
            action="mcp.refreshed",
            actor=actor,
            object_type="mcp_server",
            object_id=server.pk,
            after={
                "added": refresh.added,
                "changed": [c["tool"] for c in refresh.changed],
                "removed": refresh.removed,
            },
        )
    return refresh


def register_mcp_server(
    *,
    name: str,
    transport: str,
    actor: AbstractBaseUser | None,
    command: str = "",
    args: list[str] | None = None,
    url: str = "",
    title: str = "",
    timeout_seconds: float = 30.0,
) -> McpServer:
    """Register a server (its tools arrive with a refresh)."""
    server = McpServer(
        name=name,
        title=title,
        transport=transport,
        command=command,
        args=list(args or []),
        url=url,
        timeout_seconds=timeout_seconds,
        created_by=actor if actor is not None and actor.pk else None,
    )
    if transport not in McpServer.Transport.values:
        raise ValueError(f"unknown transport {transport!r}: stdio or http")
    if transport == McpServer.Transport.STDIO and not command.strip():
        raise ValueError("a stdio server needs the command that starts it")
    if transport == McpServer.Transport.HTTP and not url.startswith(("http://", "https://")):
        raise ValueError("an HTTP server needs its http(s) URL")
    with transaction.atomic():
        server.full_clean()
        server.save()
        record_event(
            action="mcp.registered",
            actor=actor,
            object_type="mcp_server",
            object_id=server.pk,
            after={"name": name, "transport": transport, "command": command, "url": url},
        )
    return server
