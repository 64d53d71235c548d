"""The customer-support desk: triage, research, draft, decide, then send or ask a person."""

from typing import Any

NAME = "support_desk"

DEFINITION: dict[str, Any] = {
    "name": NAME,
    "start": "triage",
    "nodes": [
        {
            "name": "triage",
            "kind": "agent",
            "agent": "triage",
            "title": "Classify category and urgency",
            "edges": [{"to": "research"}],
        },
        {
            "name": "research",
            "kind": "agent",
            "agent": "research",
            "title": "Find articles and similar resolved tickets",
            "edges": [{"to": "draft"}],
        },
        {
            "name": "draft",
            "kind": "agent",
            "agent": "drafter",
            "title": "Draft the reply",
            "edges": [{"to": "decide"}],
        },
        {
            "name": "decide",
            "kind": "agent",
            "agent": "decider",
            "title": "Auto-send or ask a person",
            "edges": [
                {"to": "send", "when": {"route": "auto_send"}},
                {"to": "review", "when": {"route": "human"}},
            ],
        },
        {
            "name": "review",
            "kind": "human",
            "title": "Operator approves, edits or rejects",
            "edges": [
                {"to": "send", "when": {"approved": True}},
                {"to": "end", "when": {"approved": False}},
            ],
        },
        {
            "name": "send",
            "kind": "agent",
            "agent": "sender",
            "title": "Send the reply",
            "edges": [{"to": "end"}],
        },
    ],
}

# Auto-send thresholds on the triage confidence, per category. A category that is missing
# here, or listed in always_human, always goes to a person.
CONFIG: dict[str, Any] = {
    "auto_send_thresholds": {
        "billing": 0.80,
        "account_access": 0.80,
        "bug": 0.85,
        "how_to": 0.70,
        "feature_request": 0.70,
        "cancellation": 0.85,
    },
    "always_human_categories": ["security", "outage", "refund"],
    "always_human_urgencies": ["critical"],
    # Retrieval must find at least one article this relevant for a draft to go out alone.
    "min_article_score": 0.05,
}
