"""The MCP client against real servers: the time and git servers as subprocesses over stdio,
and a small server over streamable HTTP."""

import asyncio
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

from tools_registry.mcp_client import (
    McpCallFailed,
    McpEndpoint,
    McpUnavailable,
    call_tool,
    list_tools,
)

BIN = Path(sys.executable).parent
TIME = McpEndpoint("stdio", command=str(BIN / "mcp-server-time"), args=("--local-timezone", "UTC"))


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git repository with one commit on main."""
    path = tmp_path_factory.mktemp("repo")
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("hello\n")
    git(path, "add", "README.md")
    git(
        path, "-c", "user.name=Alice", "-c", "user.email=alice@example.com", "commit", "-qm", "init"
    )
    return path


def git_server(repo: Path) -> McpEndpoint:
    return McpEndpoint(
        "stdio", command=str(BIN / "mcp-server-git"), args=("--repository", str(repo))
    )


class Total(BaseModel):
    total: int


@pytest.fixture(scope="module")
def http_url():
    """A streamable-HTTP server with one tool, ``add``, served from a background thread."""
    server = MCPServer("adder")

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def add(a: int, b: int) -> Total:
        """Add two integers."""
        return Total(total=a + b)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning"
    )
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not web.started:
        assert time.monotonic() < deadline, "the HTTP server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/mcp"
    web.should_exit = True
    thread.join(10)


def test_it_lists_the_time_servers_tools():
    tools = {tool.name: tool for tool in list_tools(TIME)}

    assert set(tools) == {"get_current_time", "convert_time"}
    assert tools["convert_time"].annotations["readOnlyHint"] is True
    now = tools["get_current_time"]
    assert now.input_schema["required"] == ["timezone"]
    assert "timezone" in now.output_schema["properties"]
    assert now.description


def test_it_tells_the_time_in_berlin():
    result = call_tool(TIME, "get_current_time", {"timezone": "Europe/Berlin"}, timeout=20)

    assert not result.is_error
    assert result.structured["timezone"] == "Europe/Berlin"
    assert "Europe/Berlin" in result.text


def test_a_bad_timezone_is_an_error_result_not_an_exception():
    result = call_tool(TIME, "get_current_time", {"timezone": "Not/AZone"}, timeout=20)

    assert result.is_error
    assert "Invalid timezone" in result.text


def test_an_unknown_tool_is_refused():
    with pytest.raises(McpCallFailed, match="no_such_tool") as refused:
        call_tool(TIME, "no_such_tool", {}, timeout=20)

    assert refused.value.kind == "permanent"


def test_a_missing_executable_is_unavailable(tmp_path):
    missing = McpEndpoint("stdio", command=str(tmp_path / "no-such-server"))

    with pytest.raises(McpUnavailable, match="no-such-server") as unavailable:
        list_tools(missing)

    assert unavailable.value.kind == "transient"


def test_a_server_that_dies_at_start_says_why(tmp_path):
    with pytest.raises(McpUnavailable, match="not a valid Git repository"):
        list_tools(git_server(tmp_path))


def test_a_silent_server_times_out():
    silent = McpEndpoint(
        "stdio", command=sys.executable, args=("-c", "import time; time.sleep(60)")
    )

    with pytest.raises(McpUnavailable, match="no answer within 1s while initializing"):
        list_tools(silent, timeout=1)


def test_it_lists_git_tools_with_their_hints(repo):
    tools = {tool.name: tool for tool in list_tools(git_server(repo))}

    assert tools["git_status"].annotations["readOnlyHint"] is True
    assert tools["git_reset"].annotations["destructiveHint"] is True
    assert tools["git_create_branch"].annotations["readOnlyHint"] is False


def test_it_reads_and_writes_a_git_repository(repo):
    server = git_server(repo)

    status = call_tool(server, "git_status", {"repo_path": str(repo)}, timeout=20)
    created = call_tool(
        server, "git_create_branch", {"repo_path": str(repo), "branch_name": "bob/fix"}, timeout=20
    )

    assert "On branch main" in status.text
    assert not created.is_error
    assert "bob/fix" in git(repo, "branch", "--list", "bob/fix")


def test_it_lists_and_calls_over_streamable_http(http_url):
    server = McpEndpoint("http", url=http_url)

    (add,) = list_tools(server)
    result = call_tool(server, "add", {"a": 40, "b": 2}, timeout=10)

    assert add.name == "add"
    assert add.annotations == {"readOnlyHint": True}
    assert result.structured == {"total": 42}


def test_it_works_from_code_that_runs_an_event_loop(http_url):
    async def from_an_async_view():
        return call_tool(McpEndpoint("http", url=http_url), "add", {"a": 1, "b": 2}, timeout=10)

    assert asyncio.run(from_an_async_view()).structured == {"total": 3}


def test_an_unreachable_http_server_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(McpUnavailable, match=f"127.0.0.1:{port}"):
        list_tools(McpEndpoint("http", url=f"http://127.0.0.1:{port}/mcp"), timeout=5)


@pytest.mark.parametrize(
    "endpoint",
    [
        McpEndpoint("ssh", command="server"),
        McpEndpoint("stdio"),
        McpEndpoint("http", url="ftp://example.com/mcp"),
        McpEndpoint("http", command="server"),
    ],
)
def test_a_malformed_endpoint_is_rejected_before_anything_runs(endpoint):
    with pytest.raises(ValueError):
        list_tools(endpoint)
