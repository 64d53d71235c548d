from django.contrib import admin

from orchestration.admin import ReadOnlyAdmin
from tools_registry.models import ToolCall


@admin.register(ToolCall)
class ToolCallAdmin(ReadOnlyAdmin):
    list_display = ["id", "tool", "agent", "status", "idempotency_key", "attempts", "started_at"]
    list_filter = ["status", "tool"]
