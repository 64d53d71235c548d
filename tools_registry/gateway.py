"""The tool gateway: every side effect an agent causes passes through ``call_tool``."""

from typing import Any

from jsonschema import Draft202012Validator

from tools_registry.builtin import BUILTIN_TOOLS


class ToolDenied(Exception):
    """The call was refused before anything was executed."""

    kind = "policy_denied"


def call_tool(
    *, name: str, agent: str, arguments: dict[str, Any], idempotency_key: str
) -> dict[str, Any]:
    """Check that the tool exists and the arguments fit its schema, then execute it with the
    idempotency key, which the tool uses so that a repeated call repeats no effect."""
    tool = BUILTIN_TOOLS.get(name)
    if tool is None:
        raise ToolDenied(f"agent {agent!r} called unknown tool {name!r}")
    errors = sorted(
        Draft202012Validator(tool.input_schema).iter_errors(arguments), key=lambda e: e.path
    )
    if errors:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.path) or '(arguments)'}: {e.message}" for e in errors
        )
        raise ToolDenied(f"arguments for {name!r} do not fit its schema: {details}")
    return tool.handler(arguments, idempotency_key)
