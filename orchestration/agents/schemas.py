"""What each agent must return, as JSON Schema. An output that does not fit is sent back to
the agent with the validation errors; an agent that cannot produce a fitting output pauses
its run for a person."""

from typing import Any

from jsonschema import Draft202012Validator

from orchestration.models.taxonomy import Category, Urgency

_PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}

OUTPUT_SCHEMAS: dict[str, dict[str, Any]] = {
    "triage": {
        "type": "object",
        "required": ["category", "category_confidence", "urgency", "urgency_confidence"],
        "properties": {
            "category": {"enum": list(Category.values)},
            "urgency": {"enum": list(Urgency.values)},
            "category_confidence": _PROBABILITY,
            "urgency_confidence": _PROBABILITY,
        },
    },
    "research": {
        "type": "object",
        "required": ["articles", "similar_tickets"],
        "properties": {
            "articles": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "slug", "title", "score"],
                    "properties": {"score": _PROBABILITY},
                },
            },
            "similar_tickets": {"type": "array"},
        },
    },
    "drafter": {
        "type": "object",
        "required": ["text", "citations"],
        "properties": {
            "text": {"type": "string", "minLength": 20, "maxLength": 20000},
            "citations": {"type": "array", "items": {"type": "string"}},
            "sources": {"type": "array", "items": {"type": "string"}},
            "primary_citation": {"type": "string"},
            "refund": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["amount", "currency"],
                        "properties": {
                            "amount": {"type": "string", "pattern": "^\\d{1,6}\\.\\d{2}$"},
                            "currency": {"enum": ["EUR"]},
                        },
                    },
                ]
            },
        },
    },
    "decider": {
        "type": "object",
        "required": ["route", "reasons"],
        "properties": {
            "route": {"enum": ["auto_send", "human"]},
            "reasons": {"type": "array", "items": {"type": "string"}},
        },
    },
    "sender": {
        "type": "object",
        "required": ["outcome", "reply_id"],
        "properties": {
            "outcome": {"enum": ["auto_sent", "sent"]},
            "reply_id": {"type": ["integer", "null"]},
            "refund_id": {"type": "integer"},
            "executed": {"const": False},
        },
        # No reply id only in a replay's dry run, where a send the original never made is
        # not made (and says so); a real send always names its reply.
        "if": {"required": ["executed"]},
        "then": {"properties": {"reply_id": {"type": "null"}}},
        "else": {"properties": {"reply_id": {"type": "integer"}}},
    },
}

_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in OUTPUT_SCHEMAS.items()}


def output_problems(agent: str, output: Any) -> list[str]:
    """Every way ``output`` breaks the agent's schema, readably; empty when it fits."""
    validator = _VALIDATORS.get(agent)
    if validator is None:
        return []
    problems = [
        f"{'.'.join(str(p) for p in error.path) or '(output)'}: {error.message}"
        for error in sorted(validator.iter_errors(output), key=lambda e: list(e.path))
    ]
    if agent == "drafter" and not problems:
        problems = citation_problems(output)
    return problems


def citation_problems(draft: dict[str, Any]) -> list[str]:
    """A reply may cite only the passages it was given (or their articles, by slug): a
    citation of anything else is made up, and the draft is invalid output."""
    sources = set(draft.get("sources", []))
    articles = {ref.partition("#")[0] for ref in sources}
    return [
        f"citations: [{ref}] is not one of the passages given ({', '.join(sorted(sources))})"
        for ref in draft.get("citations", [])
        if ref not in sources and ref not in articles
    ]
