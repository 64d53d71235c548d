from django.conf import settings
from django.db import models


class Grant(models.Model):
    """An agent's permission to call one tool, as that tool was defined when granted.

    ``constraints`` bound the arguments ([{"path", "op", "value"}], all must hold);
    ``approval`` says when a person must approve the exact call: never, always, or when every
    condition in ``approval_conditions`` holds. One grant per agent and tool is active (not
    revoked) at a time; a change is written in place and audited with before and after."""

    class Approval(models.TextChoices):
        NEVER = "never"
        ALWAYS = "always"
        WHEN = "when"

    agent = models.CharField(max_length=63)
    tool = models.ForeignKey("tools_registry.Tool", on_delete=models.PROTECT, related_name="grants")
    definition_hash = models.CharField(max_length=64)
    constraints = models.JSONField(default=list, blank=True)
    approval = models.CharField(max_length=8, choices=Approval.choices, default=Approval.NEVER)
    approval_conditions = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Who granted it when no person did (a deployment's defaults): "setup".
    granted_by_label = models.CharField(max_length=150, blank=True)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["agent", "tool__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "tool"],
                condition=models.Q(revoked_at__isnull=True),
                name="one_active_grant_per_agent_tool",
            )
        ]

    def __str__(self) -> str:
        return f"{self.agent} → {self.tool_id}"


class ToolApproval(models.Model):
    """A person's approval of one exact tool call: bound to its idempotency key, arguments
    and tool definition, usable once, and rejected once it expires."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"
        EXPIRED = "expired"
        USED = "used"

    idempotency_key = models.CharField(max_length=200, unique=True)
    run = models.ForeignKey(
        "orchestration.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    agent = models.CharField(max_length=63)
    tool = models.ForeignKey("tools_registry.Tool", on_delete=models.PROTECT, related_name="+")
    arguments = models.JSONField()
    arguments_hash = models.CharField(max_length=64)
    definition_hash = models.CharField(max_length=64)
    # Why the grant asks a person (its rule, in words).
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    task = models.OneToOneField(
        "orchestration.HumanTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tool_approval",
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.tool_id} for {self.agent} ({self.status})"
