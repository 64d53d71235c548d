"""Built-in tools: a JSON Schema for the arguments and the function that does the work."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestration.services.replies import send_reply


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    description: str
    risk: str  # "read", "write" or "irreversible"
    input_schema: dict[str, Any]
    handler: Callable[[dict[str, Any], str], dict[str, Any]]
    # Safe to execute again with the same idempotency key (it acts at most once by itself).
    idempotent: bool = True


def _send_reply(arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    reply, _ = send_reply(
        ticket_id=arguments["ticket_id"],
        run_id=arguments["run_id"],
        body=arguments["body"],
        approved_by_id=arguments.get("approved_by_id"),
        idempotency_key=idempotency_key,
    )
    return {"reply_id": reply.pk}


BUILTIN_TOOLS: dict[str, BuiltinTool] = {
    "send_reply": BuiltinTool(
        name="send_reply",
        description="Put a reply to the customer in the outbox.",
        risk="irreversible",
        input_schema={
            "type": "object",
            "properties": {
                "ticket_id": {"type": "integer", "minimum": 1},
                "run_id": {"type": "integer", "minimum": 1},
                "body": {"type": "string", "minLength": 1, "maxLength": 20000},
                "approved_by_id": {"type": ["integer", "null"]},
            },
            "required": ["ticket_id", "run_id", "body"],
            "additionalProperties": False,
        },
        handler=_send_reply,
    ),
}
