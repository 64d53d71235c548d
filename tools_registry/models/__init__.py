from tools_registry.models.calls import PolicyViolation, ToolBreaker, ToolCall, ToolRateWindow
from tools_registry.models.catalog import McpServer, Tool
from tools_registry.models.grants import Grant, ToolApproval

__all__ = [
    "Grant",
    "McpServer",
    "PolicyViolation",
    "Tool",
    "ToolApproval",
    "ToolBreaker",
    "ToolCall",
    "ToolRateWindow",
]
