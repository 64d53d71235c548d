"""Periodic work of the tool registry, run by Celery beat."""

from celery import shared_task

from tools_registry.approvals import expire_tool_approvals


@shared_task(name="tools_registry.expire_tool_approvals", acks_late=True)
def expire_tool_approvals_task() -> int:
    return expire_tool_approvals()
