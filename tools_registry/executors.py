"""Running a tool once the gate has let its call through: a built-in's handler in this
process, or the call on the tool's MCP server."""

from typing import Any

from tools_registry.builtin import BUILTIN_TOOLS
from tools_registry.models import McpServer, Tool


class ToolFailed(Exception):
    """The tool ran and reported an error."""

    kind = "permanent"


def endpoint_for(server: McpServer) -> Any:
    from tools_registry.mcp_client import McpEndpoint

    return McpEndpoint(
        transport=server.transport,
        command=server.command,
        args=tuple(str(a) for a in server.args),
        url=server.url,
    )


def execute(tool: Tool, arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    if tool.source == Tool.Source.BUILTIN:
        builtin = BUILTIN_TOOLS.get(tool.name)
        if builtin is None:
            raise ToolFailed(f"{tool.name} has no handler in this version")
        return builtin.handler(arguments, idempotency_key)
    from tools_registry.mcp_client import call_tool

    assert tool.server is not None
    result = call_tool(
        endpoint_for(tool.server), tool.remote_name, arguments, timeout=tool.timeout_seconds
    )
    if result.is_error:
        raise ToolFailed(f"{tool.name} reported an error: {result.text[:500]}")
    return result.structured if result.structured is not None else {"text": result.text}
