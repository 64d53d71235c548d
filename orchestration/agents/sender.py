"""The send step: the approved (or auto-approved) reply goes to the outbox through the tool
gateway, keyed so that a retried step finds the reply already written."""

from orchestration.agents.base import AgentContext, AgentResult, timed_span
from tools_registry.gateway import call_tool

AGENT = "sender"


def run(ctx: AgentContext) -> AgentResult:
    review = ctx.state.get("review")
    if review:
        body = review["final_text"]
        approved_by = review.get("decided_by_id")
        outcome = "sent"
    else:
        body = ctx.state["draft"]["text"]
        approved_by = None
        outcome = "auto_sent"
    spans: list = []
    with timed_span(spans, "tool", "send_reply") as attributes:
        result = call_tool(
            name="send_reply",
            agent=AGENT,
            arguments={
                "ticket_id": ctx.ticket.id,
                "run_id": ctx.run_id,
                "body": body,
                "approved_by_id": approved_by,
            },
            idempotency_key=f"run:{ctx.run_id}:step:{ctx.step_sequence}:call:0",
            run_id=ctx.run_id,
        )
        attributes.update({"gen_ai.tool.name": "send_reply", "tool.replayed": result["replayed"]})
    output = {"outcome": outcome, "reply_id": result.get("reply_id")}
    refund = ctx.state.get("draft", {}).get("refund")
    if review and refund and result.get("executed", True):
        # The refund the ticket asked for, made only once a person approved the reply, and
        # only as far as the sender's grant allows (it may ask a person for this exact call).
        with timed_span(spans, "tool", "issue_refund") as attributes:
            made = call_tool(
                name="issue_refund",
                agent=AGENT,
                arguments={
                    "ticket_id": ctx.ticket.id,
                    "run_id": ctx.run_id,
                    "amount": refund["amount"],
                    "currency": refund["currency"],
                    "reason": f"Refund requested in ticket {ctx.ticket.id}",
                },
                idempotency_key=f"run:{ctx.run_id}:step:{ctx.step_sequence}:call:1",
                run_id=ctx.run_id,
            )
            attributes.update(
                {"gen_ai.tool.name": "issue_refund", "tool.replayed": made["replayed"]}
            )
        if made.get("refund_id") is not None:
            output["refund_id"] = made["refund_id"]
    # In a dry run that reaches a send the original run never made, nothing is sent.
    return AgentResult(
        output=output | ({} if result.get("executed", True) else {"executed": False}),
        input={"chars": len(body)},
        spans=spans,
        attributes={"gen_ai.agent.name": AGENT},
    )
