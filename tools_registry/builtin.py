"""Built-in tools: JSON Schemas for the arguments and the result, and the function that does
the work. The gateway checks a call against the tool's schema and policy before its handler
runs, so a handler sees only arguments that fit; it still refuses what its service refuses."""

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
from django.conf import settings

from orchestration.agents.retrieval import retrieve
from orchestration.models import KnowledgeArticle, Ticket
from orchestration.models.taxonomy import Category, Urgency
from orchestration.services.refunds import CURRENCIES, issue_refund
from orchestration.services.replies import send_reply
from orchestration.services.tickets import update_ticket_fields


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    title: str
    description: str
    risk: str  # "read", "write" or "irreversible"
    input_schema: dict[str, Any]
    # Every result the handler returns fits this schema.
    output_schema: dict[str, Any]
    handler: Callable[[dict[str, Any], str], dict[str, Any]]
    # Safe to execute again with the same idempotency key (it acts at most once by itself).
    idempotent: bool = True
    timeout_seconds: float = 10.0
    rate_limit_per_minute: int | None = None


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


ID = {"type": "integer", "minimum": 1}


# send_reply


def _send_reply(arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    reply, _ = send_reply(
        ticket_id=arguments["ticket_id"],
        run_id=arguments["run_id"],
        body=arguments["body"],
        approved_by_id=arguments.get("approved_by_id"),
        idempotency_key=idempotency_key,
    )
    return {"reply_id": reply.pk}


# search_knowledge_base


def _search_knowledge_base(arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    found = retrieve(arguments["query"], limit=arguments.get("limit", 3))
    present = set(
        KnowledgeArticle.objects.filter(pk__in=[h.id for h in found.articles]).values_list(
            "id", flat=True
        )
    )
    return {
        "articles": [
            {
                "id": h.id,
                "slug": h.slug,
                "title": h.title,
                "summary": h.summary,
                "category": h.category,
                "score": h.score,
                "passage": {"ref": h.passage.ref, "text": h.passage.text},
                "passages": [{"ref": p.ref, "text": p.text} for p in h.passages],
                "lexical": h.lexical,
                "precedent": h.precedent,
            }
            for h in found.articles
            if h.id in present  # not deleted since the index was built
        ],
        "signals": found.signals,
    }


# read_ticket


def _read_ticket(arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    ticket_id = arguments["ticket_id"]
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        raise LookupError(f"there is no ticket {ticket_id}")
    return {
        "subject": ticket.subject,
        "body": ticket.body,
        "customer_name": ticket.customer_name,
        "channel": ticket.channel,
        "status": ticket.status,
        "known_category": ticket.known_category,
        "known_urgency": ticket.known_urgency,
    }


# update_ticket_fields


def _update_ticket_fields(arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    changed = update_ticket_fields(
        ticket_id=arguments["ticket_id"],
        fields=arguments["fields"],
        actor_label="tool:update_ticket_fields",
    )
    return {"ticket_id": arguments["ticket_id"], "changed": changed}


# issue_refund


def _issue_refund(arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    refund, _ = issue_refund(
        ticket_id=arguments["ticket_id"],
        run_id=arguments["run_id"],
        amount=Decimal(arguments["amount"]),
        currency=arguments["currency"],
        reason=arguments["reason"],
        idempotency_key=idempotency_key,
        actor_label="tool:issue_refund",
    )
    return {"refund_id": refund.pk, "amount": f"{refund.amount:.2f}", "currency": refund.currency}


# post_webhook

WEBHOOK_TIMEOUT_SECONDS = 10.0
WEBHOOK_MAX_ATTEMPTS = 3
WEBHOOK_BACKOFF_SECONDS = 0.2
# Module attributes rather than direct calls so that tests can run the retries without waiting.
sleep = time.sleep
monotonic = time.monotonic


class WebhookFailed(Exception):
    """The receiver did not take the webhook: ``kind`` is "transient" when it might later
    (it was unreachable, slow, busy or failing), "permanent" when it refused the request."""

    def __init__(self, message: str, *, kind: str, attempts: int, status_code: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts
        self.status_code = status_code


def webhook_client() -> httpx.Client:
    """The HTTP client post_webhook sends with. Redirects are not followed: a signed
    request goes to the address it was signed for or nowhere."""
    return httpx.Client(follow_redirects=False, headers={"User-Agent": "Switchboard"})


def webhook_signature(*, secret: str, timestamp: str, body: str) -> str:
    """What a receiver recomputes to check ``X-Switchboard-Signature``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def _retryable(status_code: int) -> bool:
    return status_code == 429 or status_code >= 500


def _post_webhook(arguments: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
    """POST the payload, signed, retrying what may pass later (connection errors, timeouts,
    429 and 5xx) with exponential backoff, and giving up rather than go past the tool's
    timeout. Any other answer than 2xx is final."""
    url, event = arguments["url"], arguments["event"]
    try:
        https = httpx.URL(url).scheme == "https"
    except httpx.InvalidURL:
        https = False
    if not https:
        raise WebhookFailed(f"{url} is not an https URL", kind="permanent", attempts=0)
    body = json.dumps(arguments["payload"], separators=(",", ":"), sort_keys=True)
    deadline = monotonic() + WEBHOOK_TIMEOUT_SECONDS
    with webhook_client() as client:
        for attempt in range(1, WEBHOOK_MAX_ATTEMPTS + 1):
            # Signed afresh each attempt, so that a receiver's check of the timestamp's age
            # does not turn a late retry away.
            timestamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/json",
                "X-Switchboard-Event": event,
                "X-Switchboard-Idempotency-Key": idempotency_key,
                "X-Switchboard-Timestamp": timestamp,
                "X-Switchboard-Signature": webhook_signature(
                    secret=settings.WEBHOOK_SIGNING_SECRET, timestamp=timestamp, body=body
                ),
            }
            # A sleep may overrun a little; the attempt it delayed still gets a moment.
            timeout = max(deadline - monotonic(), 0.01)
            try:
                response = client.post(url, content=body.encode(), headers=headers, timeout=timeout)
            except httpx.TransportError as exc:
                problem, status_code = f"{type(exc).__name__}: {exc}", None
            else:
                status_code = response.status_code
                if 200 <= status_code < 300:
                    return {"status_code": status_code, "attempts": attempt}
                problem = f"HTTP {status_code}"
                if not _retryable(status_code):
                    raise WebhookFailed(
                        f"{url} refused the {event} webhook: {problem}",
                        kind="permanent",
                        attempts=attempt,
                        status_code=status_code,
                    )
            delay = WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1)
            if attempt == WEBHOOK_MAX_ATTEMPTS or monotonic() + delay >= deadline:
                break
            sleep(delay)
    raise WebhookFailed(
        f"{url} did not take the {event} webhook after {attempt} attempts: {problem}",
        kind="transient",
        attempts=attempt,
        status_code=status_code,
    )


BUILTIN_TOOLS: dict[str, BuiltinTool] = {
    tool.name: tool
    for tool in [
        BuiltinTool(
            name="send_reply",
            title="Send a reply",
            description="Put a reply to the customer in the outbox.",
            risk="irreversible",
            input_schema=_object(
                {
                    "ticket_id": ID,
                    "run_id": ID,
                    "body": {"type": "string", "minLength": 1, "maxLength": 20000},
                    "approved_by_id": {"type": ["integer", "null"]},
                },
                ["ticket_id", "run_id", "body"],
            ),
            output_schema=_object({"reply_id": ID}, ["reply_id"]),
            handler=_send_reply,
        ),
        BuiltinTool(
            name="search_knowledge_base",
            title="Search the help articles",
            description="Find the help articles that best answer a question, best first, "
            "each with a relevance score between 0 and 1 and the passage that matches.",
            risk="read",
            input_schema=_object(
                {
                    "query": {"type": "string", "minLength": 1, "maxLength": 20000},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                },
                ["query"],
            ),
            output_schema=_object(
                {
                    "articles": {
                        "type": "array",
                        "maxItems": 10,
                        "items": _object(
                            {
                                "id": ID,
                                "slug": {"type": "string", "minLength": 1},
                                "title": {"type": "string"},
                                "summary": {"type": "string"},
                                "category": {"enum": Category.values},
                                "score": {"type": "number", "minimum": 0, "maximum": 1},
                                # The article's passage that best matches the query.
                                "passage": _object(
                                    {
                                        "ref": {"type": "string", "minLength": 1},
                                        "text": {"type": "string"},
                                    },
                                    ["ref", "text"],
                                ),
                                # Every passage of it the drafter should quote, best first.
                                "passages": {
                                    "type": "array",
                                    "maxItems": 4,
                                    "items": _object(
                                        {
                                            "ref": {"type": "string", "minLength": 1},
                                            "text": {"type": "string"},
                                        },
                                        ["ref", "text"],
                                    ),
                                },
                                "lexical": {"type": "number", "minimum": 0, "maximum": 1},
                                "precedent": {"type": "number", "minimum": 0, "maximum": 1},
                            },
                            ["id", "slug", "title", "summary", "category", "score", "passage"],
                        ),
                    },
                    # How strong the best match is, for whoever judges the answer.
                    "signals": {
                        "type": "object",
                        "additionalProperties": {"type": "number"},
                    },
                },
                ["articles"],
            ),
            handler=_search_knowledge_base,
        ),
        BuiltinTool(
            name="read_ticket",
            title="Read a ticket",
            description="The customer's ticket: subject, body, who sent it and how, its "
            "status, and the category and urgency it was labelled with, if any.",
            risk="read",
            input_schema=_object({"ticket_id": ID}, ["ticket_id"]),
            output_schema=_object(
                {
                    "subject": {"type": "string"},
                    "body": {"type": "string"},
                    "customer_name": {"type": "string"},
                    "channel": {"type": "string"},
                    "status": {"enum": Ticket.Status.values},
                    "known_category": {"enum": ["", *Category.values]},
                    "known_urgency": {"enum": ["", *Urgency.values]},
                },
                [
                    "subject",
                    "body",
                    "customer_name",
                    "channel",
                    "status",
                    "known_category",
                    "known_urgency",
                ],
            ),
            handler=_read_ticket,
        ),
        BuiltinTool(
            name="update_ticket_fields",
            title="Update a ticket",
            description="Set a ticket's category, urgency or status; returns the fields "
            "whose value changed.",
            risk="write",
            input_schema=_object(
                {
                    "ticket_id": ID,
                    "fields": {
                        **_object(
                            {
                                "category": {"enum": Category.values},
                                "urgency": {"enum": Urgency.values},
                                "status": {"enum": Ticket.Status.values},
                            },
                            [],
                        ),
                        "minProperties": 1,
                    },
                },
                ["ticket_id", "fields"],
            ),
            output_schema=_object(
                {
                    "ticket_id": ID,
                    "changed": {
                        "type": "array",
                        "items": {"enum": ["category", "urgency", "status"]},
                        "uniqueItems": True,
                    },
                },
                ["ticket_id", "changed"],
            ),
            handler=_update_ticket_fields,
        ),
        BuiltinTool(
            name="issue_refund",
            title="Issue a refund",
            description="Refund the customer of a ticket an amount, recorded in the refunds "
            "ledger once per idempotency key.",
            risk="irreversible",
            input_schema=_object(
                {
                    "ticket_id": ID,
                    "run_id": ID,
                    "amount": {
                        "type": "string",
                        "pattern": r"^\d{1,6}(\.\d{1,2})?$",
                        # Zero fits the pattern but is no refund.
                        "not": {"pattern": r"^0+(\.0{1,2})?$"},
                    },
                    "currency": {"enum": list(CURRENCIES)},
                    "reason": {"type": "string", "minLength": 1, "maxLength": 500},
                },
                ["ticket_id", "run_id", "amount", "currency", "reason"],
            ),
            output_schema=_object(
                {
                    "refund_id": ID,
                    "amount": {"type": "string", "pattern": r"^\d{1,6}\.\d{2}$"},
                    "currency": {"enum": list(CURRENCIES)},
                },
                ["refund_id", "amount", "currency"],
            ),
            handler=_issue_refund,
            rate_limit_per_minute=10,
        ),
        BuiltinTool(
            name="post_webhook",
            title="Post a webhook",
            description="POST a signed JSON event to an https URL, retrying while the "
            "receiver is unreachable or busy. The idempotency key is sent along so that the "
            "receiver can drop repeats.",
            risk="write",
            input_schema=_object(
                {
                    "url": {
                        "type": "string",
                        "format": "uri",
                        "pattern": r"^https://[^\s/?#]+",
                        "maxLength": 2000,
                    },
                    # Sent as a header: printable ASCII, no spaces.
                    "event": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 100,
                        "pattern": "^[!-~]+$",
                    },
                    "payload": {"type": "object"},
                },
                ["url", "event", "payload"],
            ),
            output_schema=_object(
                {
                    "status_code": {"type": "integer", "minimum": 200, "maximum": 299},
                    "attempts": {"type": "integer", "minimum": 1, "maximum": WEBHOOK_MAX_ATTEMPTS},
                },
                ["status_code", "attempts"],
            ),
            handler=_post_webhook,
            # The receiver may act on every request it gets; only it can drop repeats.
            idempotent=False,
            timeout_seconds=WEBHOOK_TIMEOUT_SECONDS,
            rate_limit_per_minute=60,
        ),
    ]
}
