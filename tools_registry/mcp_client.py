"""Talking to outside MCP servers: list the tools a server offers and call one of them.

Each function opens its own session (starting the server for stdio, connecting for
streamable HTTP), does one piece of work and closes it again. Every failure reaches the
caller as one of two exceptions: ``McpUnavailable`` (worth retrying later) or
``McpCallFailed`` (the server understood and said no; retrying will not help)."""

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import urlparse

import anyio
from mcp import ClientSession, MCPError, StdioServerParameters
from mcp import types as mcp_types
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

T = TypeVar("T")

# Error codes that mean the connection, not the request, went wrong.
_TRANSIENT_CODES = {mcp_types.CONNECTION_CLOSED, mcp_types.REQUEST_TIMEOUT}
_HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")


@dataclass(frozen=True)
class McpEndpoint:
    """Where a server is reached: a command to start (stdio) or a URL (streamable HTTP)."""

    transport: str  # "stdio" or "http"
    command: str = ""  # stdio: the executable
    args: tuple[str, ...] = ()  # stdio: its arguments
    url: str = ""  # http: the endpoint, e.g. http://127.0.0.1:8765/mcp
    env: tuple[tuple[str, str], ...] = ()  # stdio: environment beyond PATH, HOME and the like

    @property
    def label(self) -> str:
        """A short name for messages: the executable's file name, or the URL."""
        return Path(self.command).name if self.transport == "stdio" else self.url


@dataclass(frozen=True)
class RemoteTool:
    """A tool as the server describes it."""

    name: str
    title: str  # "" when the server gives none
    description: str
    input_schema: dict[str, Any]  # JSON Schema of the arguments
    output_schema: dict[str, Any] | None  # JSON Schema of ``RemoteResult.structured``, if declared
    annotations: dict[str, bool]  # readOnlyHint etc., camelCase, only those the server sent


@dataclass(frozen=True)
class RemoteResult:
    """What a call returned."""

    structured: dict[str, Any] | None  # the structuredContent object, if any
    text: str  # the text blocks of the content, joined by newlines
    is_error: bool  # the tool ran and reported failure (bad arguments, say)


class McpUnavailable(Exception):
    """The server could not be started, reached or initialized, or it did not answer in time."""

    kind = "transient"


class McpCallFailed(Exception):
    """The server refused the request: an unknown tool, a protocol error, a malformed result."""

    kind = "permanent"


def list_tools(endpoint: McpEndpoint, *, timeout: float = 20.0) -> list[RemoteTool]:
    """Every tool the server offers, across all pages of its listing."""

    async def work(session: ClientSession) -> list[RemoteTool]:
        tools: list[RemoteTool] = []
        cursor: str | None = None
        while True:
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(_remote_tool(tool) for tool in page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    return _run(endpoint, timeout, "listing tools", work)


def call_tool(
    endpoint: McpEndpoint, name: str, arguments: dict[str, Any], *, timeout: float
) -> RemoteResult:
    """Call one tool. A tool that ran and failed is a result with ``is_error``, not an
    exception; exceptions mean the call did not happen or its outcome is unknown."""

    async def work(session: ClientSession) -> RemoteResult:
        result = await session.call_tool(name, arguments, read_timeout_seconds=timeout)
        return RemoteResult(
            structured=result.structured_content,
            text="\n".join(block.text for block in result.content if block.type == "text"),
            is_error=bool(result.is_error),
        )

    return _run(endpoint, timeout, f"calling {name!r}", work)


def _remote_tool(tool: mcp_types.Tool) -> RemoteTool:
    hints = (
        tool.annotations.model_dump(by_alias=True, exclude_none=True) if tool.annotations else {}
    )
    return RemoteTool(
        name=tool.name,
        title=tool.title or hints.get("title") or "",
        description=tool.description or "",
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations={key: hints[key] for key in _HINTS if key in hints},
    )


def _check(endpoint: McpEndpoint, timeout: float) -> None:
    if endpoint.transport == "stdio":
        if not endpoint.command:
            raise ValueError("a stdio endpoint needs a command")
    elif endpoint.transport == "http":
        url = urlparse(endpoint.url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"an http endpoint needs an http(s) URL, not {endpoint.url!r}")
    else:
        raise ValueError(f"unknown transport {endpoint.transport!r}; use 'stdio' or 'http'")
    if timeout <= 0:
        raise ValueError("timeout must be positive")


def _run(
    endpoint: McpEndpoint,
    timeout: float,
    doing: str,
    work: Callable[[ClientSession], Awaitable[T]],
) -> T:
    """Runs ``work`` in a fresh session on its own event loop; in a thread of its own
    when the caller's thread already runs one (an async view, say)."""
    _check(endpoint, timeout)

    def run() -> T:
        return asyncio.run(_in_session(endpoint, timeout, doing, work))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


async def _in_session(
    endpoint: McpEndpoint,
    timeout: float,
    doing: str,
    work: Callable[[ClientSession], Awaitable[T]],
) -> T:
    stage = "starting" if endpoint.transport == "stdio" else "connecting"
    outcome: T | None = None
    # The server's stderr is kept aside so a failed start can say why it failed.
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as errlog:
        try:
            with anyio.fail_after(timeout):
                async with (
                    _transport(endpoint, errlog) as (read, write),
                    ClientSession(read, write, read_timeout_seconds=timeout) as session,
                ):
                    stage = "initializing"
                    await session.initialize()
                    stage = doing
                    outcome = await _refusals_as_failures(endpoint, doing, work(session))
                    return outcome
        except Exception as exc:
            if outcome is not None:
                # The work is done (a write may have happened); only closing went wrong, and
                # reporting that as a failure would invite a retry that repeats the write.
                return outcome
            raise _as_mcp_error(exc, endpoint, timeout, stage, errlog) from exc


def _transport(endpoint: McpEndpoint, errlog: IO[str]) -> AbstractAsyncContextManager[Any]:
    if endpoint.transport == "http":
        return streamable_http_client(endpoint.url)
    params = StdioServerParameters(
        command=endpoint.command, args=list(endpoint.args), env=dict(endpoint.env) or None
    )
    return stdio_client(params, errlog=errlog)


async def _refusals_as_failures(endpoint: McpEndpoint, doing: str, work: Awaitable[T]) -> T:
    try:
        return await work
    except MCPError as exc:
        if exc.code in _TRANSIENT_CODES:
            raise
        raise McpCallFailed(f"{endpoint.label} refused {doing}: {exc.message}") from exc
    except RuntimeError as exc:  # the result broke the tool's own output schema
        raise McpCallFailed(f"{endpoint.label}, {doing}: {exc}") from exc


def _as_mcp_error(
    exc: BaseException, endpoint: McpEndpoint, timeout: float, stage: str, errlog: IO[str]
) -> McpUnavailable | McpCallFailed:
    """One readable exception for whatever the SDK raised, often nested ExceptionGroups."""
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, McpUnavailable | McpCallFailed):
            return leaf
    if any(isinstance(leaf, TimeoutError) for leaf in leaves) or any(
        isinstance(leaf, MCPError) and leaf.code == mcp_types.REQUEST_TIMEOUT for leaf in leaves
    ):
        reason = f"no answer within {timeout:g}s"
    else:
        reason = "; ".join(dict.fromkeys(str(leaf) or type(leaf).__name__ for leaf in leaves))
    message = f"{endpoint.label}: {reason} while {stage}"
    stderr = _tail(errlog)
    return McpUnavailable(f"{message} (stderr: {stderr})" if stderr else message)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _tail(errlog: IO[str], lines: int = 3) -> str:
    """The last few lines a stdio server wrote to stderr, on one line."""
    errlog.seek(0)
    written = [line.strip() for line in errlog.read()[-4000:].splitlines() if line.strip()]
    return " | ".join(written[-lines:])
