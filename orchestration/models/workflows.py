from functools import cached_property

from django.db import models

from orchestration.engine.workflow import WorkflowDefinition, parse_definition


class Workflow(models.Model):
    """One immutable version of a workflow. A run is pinned to the version it started on;
    changing the definition or its config makes a new version rather than editing this one."""

    name = models.CharField(max_length=63)
    version = models.PositiveIntegerField()
    definition = models.JSONField()
    config = models.JSONField(default=dict)
    definition_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="workflow_name_version"),
            models.UniqueConstraint(fields=["name", "definition_hash"], name="workflow_name_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @cached_property
    def parsed(self) -> WorkflowDefinition:
        return parse_definition(self.definition)
