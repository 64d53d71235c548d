"""Agent D, decider: send the draft on its own, or ask a person.

Three layers, each only ever able to send a ticket *to* a person:
1. hard rules: risky categories and urgencies, legal threats, data-protection requests,
   money asked for, instructions to the agents (agents.instructions), a draft that cites no
   help article;
2. the estimate that a person would send the draft unchanged (agents.decider_model), which
   must reach the workflow's ``autonomy.send_threshold`` for the decider to recommend
   sending;
3. earned autonomy: the recommendation is followed only in a category that has earned it
   from measured evidence (services.autonomy); elsewhere a person decides, seeing that the
   decider would have sent it (shadow mode).

Nothing a customer writes can make it auto-send: text in the ticket is only ever matched
against rules and models that send the ticket to a person."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestration.agents.base import AgentContext, AgentResult
from orchestration.agents.decider_model import DeciderModel, explain, features
from orchestration.agents.instructions import detect, normalise
from orchestration.engine.autonomy import AutonomyPolicy
from orchestration.learning.active import artifact, current_version
from orchestration.models import CategoryAutonomy

AGENT = "decider"

# Hard rules on the ticket text. A match always means "a person decides".
POLICY_FLAGS: dict[str, re.Pattern[str]] = {
    "legal_threat": re.compile(
        r"\b(lawyers?|attorneys?|solicitors?|legal (action|steps|proceedings)|su(e|ed|ing) "
        r"(you|tallybook)|lawsuits?|courts?|chargebacks?|small claims|consumer protection|"
        r"anwalt|rechtsanwalt|avocat|abogado)\b",
        re.I,
    ),
    # A data-protection request has legal deadlines and identity checks: a person's call.
    "data_protection_request": re.compile(
        r"\b(gdpr|dsgvo|rgpd|avg|data protection|data subject|right to (be forgotten|erasure|"
        r"access)|subject access|dsar|article (15|17)|erasure request|delete all (my|our) "
        r"(personal )?data|personal data)\b",
        re.I,
    ),
    # A request for money out of the customer's own words is a person's call to make.
    "money_requested": re.compile(
        r"\b(refund\w*|reimburs\w*|compensat\w*|credit (me|us|my|our)|money back|"
        r"rückerstattung\w*|erstatt\w*|rembours\w*|reembols\w*|devoluci\w*)",
        re.I,
    ),
}
INSTRUCTIONS = "policy flag: instructions to the agents"
SHADOW = "shadow mode"
BELOW_SEND_THRESHOLD = "is below the send threshold"


@dataclass(frozen=True)
class Route:
    route: str  # "auto_send" or "human"
    reasons: tuple[str, ...]
    # Whether the decider recommends sending (followed only where autonomy is earned).
    would_send: bool = False
    score: float | None = None
    why: tuple[str, ...] = field(default_factory=tuple)


def hard_rule_reasons(
    *,
    category: str,
    urgency: str,
    ticket_text: str,
    instruction_hit: bool,
    citations: list[str],
    config: Mapping[str, Any],
) -> list[str]:
    """Every hard rule that sends this ticket to a person."""
    reasons: list[str] = []
    named = category.replace("_", " ")
    # The rules read the ticket as a person reads it: no invisible characters, lookalike
    # letters or markup to slip a word past them ("re\u200bfund", a Cyrillic "е").
    seen = normalise(ticket_text).text
    if category in config.get("always_human_categories", []):
        reasons.append(f"{named} tickets always go to a person")
    if urgency in config.get("always_human_urgencies", []):
        reasons.append(f"{urgency} urgency always goes to a person")
    if not citations:
        reasons.append("the draft cites no help article")
    if instruction_hit:
        reasons.append(INSTRUCTIONS)
    for flag, pattern in POLICY_FLAGS.items():
        if pattern.search(seen) or pattern.search(ticket_text):
            reasons.append(f"policy flag: {flag.replace('_', ' ')}")
    return reasons


def decide_route(
    *,
    hard_reasons: list[str],
    score: float | None,
    category: str,
    policy: AutonomyPolicy,
    earned: bool,
) -> Route:
    """Auto-send only when no hard rule applies, the estimate reaches the send threshold and
    the category has earned autonomy; list every reason it does not."""
    would_send = not hard_reasons and score is not None and score >= policy.send_threshold
    reasons = list(hard_reasons)
    named = category.replace("_", " ")
    if score is None:
        reasons.append("no decider model is trained, so a person decides")
    elif score < policy.send_threshold:
        reasons.append(
            f"the estimate that a person sends it unchanged, {score:.0%}, "
            f"{BELOW_SEND_THRESHOLD} of {policy.send_threshold:.0%}"
        )
    if would_send and not earned:
        reasons.append(
            f"{SHADOW}: {named} has not earned autonomy yet; the decider would have auto-sent"
        )
    return Route("human" if reasons else "auto_send", tuple(reasons), would_send, score)


def active_model() -> tuple[int | None, DeciderModel | None]:
    """The decider version in use and its model; (None, None) before one is trained, and
    for a version of the earlier threshold format, which no longer decides."""
    version = current_version(AGENT)
    if version is None:
        return None, None
    try:
        return version.version, artifact(version, DeciderModel.loads)
    except ValueError:
        return version.version, None


def run(ctx: AgentContext) -> AgentResult:
    triage = ctx.state.get("triage", {})
    research = ctx.state.get("research", {})
    draft = ctx.state.get("draft", {})
    policy = AutonomyPolicy.from_config(ctx.config)
    detection = detect(ctx.ticket.text)
    category = triage.get("category", "")
    row = features(
        subject=ctx.ticket.subject,
        text=ctx.ticket.text,
        triage=triage,
        research=research,
        instruction_score=detection.score,
    )
    hard = hard_rule_reasons(
        category=category,
        urgency=triage.get("urgency", ""),
        ticket_text=ctx.ticket.text,
        instruction_hit=detection.hit,
        citations=draft.get("citations", []),
        config=ctx.config,
    )
    version, model = active_model()
    estimate = model.estimate(row) if model is not None else None
    route = decide_route(
        hard_reasons=hard,
        score=estimate.score if estimate else None,
        category=category,
        policy=policy,
        earned=CategoryAutonomy.earned(category, ctx.workflow),
    )
    return AgentResult(
        output={
            "route": route.route,
            "reasons": list(route.reasons),
            "would_send": route.would_send,
            "shadow": route.would_send and route.route == "human",
            "score": route.score,
            "send_threshold": policy.send_threshold,
            "why": explain(estimate.why) if estimate else [],
            "features": row,
            "instructions": {
                "score": round(detection.score, 4),
                "hit": detection.hit,
                "rules": list(detection.rules),
                "flags": list(detection.flags),
                "evidence": detection.evidence,
            },
            "confidence": triage.get("category_confidence"),
            "model_version": version,
        },
        input={
            "category": category,
            "urgency": triage.get("urgency"),
            "citations": draft.get("citations", []),
        },
        attributes={
            "gen_ai.agent.name": AGENT,
            "switchboard.decider.score": route.score,
            "switchboard.decider.would_send": route.would_send,
        },
    )
