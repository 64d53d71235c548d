"""Agent names, as workflow definitions refer to them, and the function behind each."""

from orchestration.agents import decider, drafter, research, sender, triage
from orchestration.agents.base import Agent

AGENTS: dict[str, Agent] = {
    "triage": triage.run,
    "research": research.run,
    "drafter": drafter.run,
    "decider": decider.run,
    "sender": sender.run,
}


class UnknownAgent(LookupError):
    pass


def get_agent(name: str) -> Agent:
    try:
        return AGENTS[name]
    except KeyError:
        raise UnknownAgent(f"no agent is registered as {name!r}") from None
