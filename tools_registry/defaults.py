"""The support desk's tools and grants as a new deployment starts with them."""

from tools_registry.catalog import sync_builtin_tools
from tools_registry.grants import GrantTerms, grant_tool
from tools_registry.models import Grant, Tool

SETUP = "setup"

# agent, tool, constraints, approval rule, conditions, why.
SUPPORT_DESK_GRANTS = [
    ("sender", "send_reply", [], "never", [], "Sends the reply the workflow approved."),
    (
        "sender",
        "issue_refund",
        [
            {"path": "amount", "op": "lte", "value": "500"},
            {"path": "currency", "op": "in", "value": ["EUR"]},
        ],
        "when",
        [{"path": "amount", "op": "gt", "value": "50"}],
        "Refunds up to 50 EUR go out with the reply; above that a person approves the "
        "exact refund; above 500 EUR is never allowed.",
    ),
    ("research", "search_knowledge_base", [], "never", [], "Finds help articles."),
]


def install_support_desk_grants() -> list[Grant]:
    """Store the built-in tools and grant the support desk's agents what they use, unless a
    grant for that agent and tool exists already (an admin's choices are kept)."""
    sync_builtin_tools()
    installed = []
    for agent, tool_name, constraints, approval, conditions, reason in SUPPORT_DESK_GRANTS:
        tool = Tool.objects.filter(name=tool_name).first()
        if tool is None or Grant.objects.filter(agent=agent, tool=tool).exists():
            continue
        installed.append(
            grant_tool(
                agent=agent,
                tool_id=tool.pk,
                terms=GrantTerms(
                    constraints=constraints,
                    approval=approval,
                    approval_conditions=conditions,
                    reason=reason,
                ),
                actor=None,
                actor_label=SETUP,
            )
        )
    return installed
