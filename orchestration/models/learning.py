from django.conf import settings
from django.db import models


class PolicyVersion(models.Model):
    """A learned parameter set of one agent (a trained classifier, a threshold table), versioned.

    At most one version per agent is active; the others are candidates or retired."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"

    agent = models.CharField(max_length=63)
    version = models.PositiveIntegerField()
    artifact = models.BinaryField()
    artifact_sha256 = models.CharField(max_length=64)
    metrics = models.JSONField(default=dict)
    # What it learned from: the dataset and split, and later the decisions behind it.
    lineage = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "version"], name="policy_agent_version"),
            models.UniqueConstraint(
                fields=["agent"], condition=models.Q(status="active"), name="policy_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} v{self.version} ({self.status})"
