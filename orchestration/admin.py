"""Django admin: a read-only window on the engine's records.

Runs, steps, tasks and the audit trail change only through the services (and so through the
console's screens); the admin may look but not touch. Help articles are content, and admins
may edit them here."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from orchestration import models


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(models.Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "ticket", "status", "outcome", "step_count", "created_at"]
    list_filter = ["status", "outcome"]


@admin.register(models.Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "sequence", "node", "status", "attempt"]
    list_filter = ["status", "node"]


@admin.register(models.HumanTask)
class HumanTaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "run", "kind", "status", "category", "urgency", "created_at"]
    list_filter = ["status", "category", "urgency"]


@admin.register(models.Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["id", "task", "actor", "outcome", "created_at"]


@admin.register(models.Reply)
class ReplyAdmin(ReadOnlyAdmin):
    list_display = ["id", "ticket", "run", "approved_by", "created_at"]


@admin.register(models.AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "created_at", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["action"]


@admin.register(models.Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ["id", "subject", "customer_email", "status", "channel", "created_at"]
    list_filter = ["status", "channel"]
    search_fields = ["subject", "customer_email", "external_id"]


@admin.register(models.Workflow)
class WorkflowAdmin(ReadOnlyAdmin):
    list_display = ["name", "version", "definition_hash", "created_at"]


@admin.register(models.PolicyVersion)
class PolicyVersionAdmin(ReadOnlyAdmin):
    list_display = ["agent", "version", "status", "created_at"]
    exclude = ["artifact"]


@admin.register(models.KnowledgeArticle)
class KnowledgeArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "category", "updated_at"]
    list_filter = ["category"]
    search_fields = ["title", "body"]
