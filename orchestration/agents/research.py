"""Agent B, research: the knowledge-base articles and resolved tickets most like this one."""

from orchestration.agents.base import AgentContext, AgentResult, timed_span
from orchestration.agents.retrieval import query_terms, search_articles, search_resolved_tickets

AGENT = "research"
ARTICLE_LIMIT = 3
TICKET_LIMIT = 3


def run(ctx: AgentContext) -> AgentResult:
    spans: list = []
    text = ctx.ticket.text
    with timed_span(spans, "retrieval", "search knowledge base") as attributes:
        articles = search_articles(text, ARTICLE_LIMIT)
        attributes.update({"db.operation.name": "search", "retrieval.hits": len(articles)})
    with timed_span(spans, "retrieval", "search resolved tickets") as attributes:
        tickets = search_resolved_tickets(text, TICKET_LIMIT, exclude_id=ctx.ticket.id)
        attributes.update({"db.operation.name": "search", "retrieval.hits": len(tickets)})
    return AgentResult(
        output={
            "articles": [
                {
                    "id": h.id,
                    "slug": h.ref,
                    "title": h.title,
                    "summary": h.summary,
                    "score": h.score,
                }
                for h in articles
            ],
            "similar_tickets": [
                {
                    "id": h.id,
                    "ref": h.ref,
                    "subject": h.title,
                    "resolution": h.summary,
                    "score": h.score,
                }
                for h in tickets
            ],
        },
        input={"query_terms": query_terms(text)},
        spans=spans,
        attributes={"gen_ai.agent.name": AGENT},
    )
