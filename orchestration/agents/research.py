"""Agent B, research: the help-article passages that answer the ticket, and resolved tickets
like it (which also vote for the articles that answered them: agents.retrieval)."""

from orchestration.agents.base import AgentContext, AgentResult, timed_span
from orchestration.agents.retrieval import query_terms, query_text, search_resolved_tickets
from tools_registry.gateway import call_tool

AGENT = "research"
ARTICLE_LIMIT = 3
TICKET_LIMIT = 3


def run(ctx: AgentContext) -> AgentResult:
    spans: list = []
    text = query_text(ctx.ticket.subject, ctx.ticket.body)
    with timed_span(spans, "tool", "search_knowledge_base") as attributes:
        found = call_tool(
            name="search_knowledge_base",
            agent=AGENT,
            arguments={"query": text[:20000], "limit": ARTICLE_LIMIT},
            idempotency_key=f"run:{ctx.run_id}:step:{ctx.step_sequence}:call:0",
            run_id=ctx.run_id,
        )
        articles = found["articles"]
        attributes.update(
            {
                "gen_ai.tool.name": "search_knowledge_base",
                "retrieval.hits": len(articles),
                "retrieval.passages": [a["passage"]["ref"] for a in articles],
                "retrieval.scores": [a["score"] for a in articles],
            }
        )
    with timed_span(spans, "retrieval", "search resolved tickets") as attributes:
        tickets = search_resolved_tickets(text, TICKET_LIMIT, exclude_id=ctx.ticket.id)
        attributes.update({"db.operation.name": "search", "retrieval.hits": len(tickets)})
    return AgentResult(
        output={
            "articles": [
                {
                    k: a[k]
                    for k in ("id", "slug", "title", "summary", "score", "passage", "passages")
                    if k in a
                }
                for a in articles
            ],
            "signals": found.get("signals", {}),
            "similar_tickets": [
                {
                    "id": h.id,
                    "ref": h.ref,
                    "subject": h.subject,
                    "resolution": h.resolution,
                    "answer_slugs": list(h.answer_slugs),
                    "score": h.score,
                }
                for h in tickets
            ],
        },
        input={"query_terms": query_terms(text)},
        spans=spans,
        attributes={"gen_ai.agent.name": AGENT},
    )
