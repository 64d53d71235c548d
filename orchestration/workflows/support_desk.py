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

# Hard rules first: these categories and urgencies always go to a person. Every other
# category may auto-send only once it has earned autonomy from measured evidence
# (engine.autonomy; the block below is its policy, each value checked when the workflow
# version is stored).
CONFIG: dict[str, Any] = {
    "always_human_categories": ["security", "outage", "refund"],
    "always_human_urgencies": ["critical"],
    "autonomy": {
        "target_precision": 0.95,
        "wrong_tolerance": 0.05,
        "min_evidence": 30,
        # On the shipped history's cross-fitted replay, the starting estimate's drafts at 70%
        # or more were all right (5 of 5), and 53% of those at 60% or more.
        "send_threshold": 0.7,
        "sample_share": 0.1,
        "recent_sample_share": 0.5,
        "recent_window": 20,
    },
}
