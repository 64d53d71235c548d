"""Agent D, decider: send the draft on its own, or ask a person.

The decision reads only the classifier's output, the retrieval results and fixed rules.
Nothing a customer writes can make it auto-send: text in the ticket is only ever matched
against rules that send the ticket *to* a person."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestration.agents.base import AgentContext, AgentResult
from orchestration.learning.active import current_version, learned_thresholds

AGENT = "decider"

# Hard rules on the ticket text. A match always means "a person decides".
POLICY_FLAGS: dict[str, re.Pattern[str]] = {
    "legal_threat": re.compile(
        r"\b(lawyer|attorney|legal action|sue you|lawsuit|court|chargeback)\b", re.I
    ),
    "instructions_to_agent": re.compile(
        r"(ignore (all |any |the )?(previous|prior|above) (instructions|rules)|system prompt|"
        r"you are now|as an ai|auto-?approve|approve (this|it) (automatically|yourself)|"
        r"developer mode|override (your|the) (rules|policy)|"
        r"skip(ping)? (the )?(approval|review|human)|without (an? )?(approval|review|human)|"
        r"(grant|give) (yourself|yourselves|the agents?|you) (access|permissions?|rights)|"
        r"(change|raise|elevate|update) (your|its|their) (own )?(permissions?|access|role))",
        re.I,
    ),
    # A request for money out of the customer's own words is a person's call to make.
    "money_requested": re.compile(
        r"\b(refund|reimburse|compensat\w*|credit (me|us|my|our))\b", re.I
    ),
}


NO_THRESHOLD = "no auto-send threshold is set"
BELOW_THRESHOLD = "is below the"


def held_by_threshold_only(reasons: list[str] | tuple[str, ...]) -> bool:
    """Whether a draft went to a person only for its confidence (no rule sent it there):
    the drafts whose outcomes say where a category's threshold should be."""
    return bool(reasons) and all(
        r.startswith(NO_THRESHOLD) or (r.startswith("confidence ") and BELOW_THRESHOLD in r)
        for r in reasons
    )


@dataclass(frozen=True)
class Route:
    route: str  # "auto_send" or "human"
    reasons: tuple[str, ...]
    threshold: float | None


def decide_route(
    *,
    category: str,
    urgency: str,
    confidence: float,
    article_count: int,
    ticket_text: str,
    config: Mapping[str, Any],
) -> Route:
    """Auto-send only when every rule allows it; list every rule that does not."""
    reasons: list[str] = []
    named = category.replace("_", " ")
    if category in config.get("always_human_categories", []):
        reasons.append(f"{named} tickets always go to a person")
    if urgency in config.get("always_human_urgencies", []):
        reasons.append(f"{urgency} urgency always goes to a person")
    threshold = config.get("auto_send_thresholds", {}).get(category)
    if threshold is None:
        if not reasons:
            reasons.append(f"{NO_THRESHOLD} for {named}")
    elif confidence < threshold:
        reasons.append(
            f"confidence {confidence:.1%} {BELOW_THRESHOLD} {named} threshold {threshold:.0%}"
        )
    if article_count == 0:
        reasons.append("no help article supports the draft")
    for flag, pattern in POLICY_FLAGS.items():
        if pattern.search(ticket_text):
            reasons.append(f"policy flag: {flag.replace('_', ' ')}")
    return Route("human" if reasons else "auto_send", tuple(reasons), threshold)


def effective_config(config: Mapping[str, Any]) -> tuple[Mapping[str, Any], int | None]:
    """The workflow's config with the learned thresholds in place of its own, once a decider
    version is in use (categories it has no threshold for ask a person, and categories the
    workflow gives no threshold never get one); and that version."""
    version = current_version(AGENT)
    learned = learned_thresholds(version)
    if learned is None:
        return config, None
    # Only a category the workflow lets auto-send at all may get a learned threshold.
    allowed = config.get("auto_send_thresholds", {})
    thresholds = {c: t for c, t in learned.items() if t is not None and c in allowed}
    return {**config, "auto_send_thresholds": thresholds}, version.version if version else None


def run(ctx: AgentContext) -> AgentResult:
    triage = ctx.state.get("triage", {})
    research = ctx.state.get("research", {})
    config, version = effective_config(ctx.config)
    route = decide_route(
        category=triage.get("category", ""),
        urgency=triage.get("urgency", ""),
        confidence=float(triage.get("category_confidence", 0.0)),
        article_count=len(research.get("articles", [])),
        ticket_text=ctx.ticket.text,
        config=config,
    )
    return AgentResult(
        output={
            "route": route.route,
            "reasons": list(route.reasons),
            "threshold": route.threshold,
            "confidence": triage.get("category_confidence"),
            "thresholds_version": version,
        },
        input={
            "category": triage.get("category"),
            "urgency": triage.get("urgency"),
            "confidence": triage.get("category_confidence"),
            "articles": len(research.get("articles", [])),
        },
        attributes={"gen_ai.agent.name": AGENT},
    )
