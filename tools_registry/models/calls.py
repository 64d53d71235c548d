from django.db import models


class ToolCall(models.Model):
    """One call an agent made through the gateway, recorded before the tool runs and completed
    after. Its idempotency key, derived from (run, step, call index), is unique: a retried or
    redelivered step finds the completed call and reuses its result instead of acting again."""

    class Status(models.TextChoices):
        STARTED = "started"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        DENIED = "denied"

    run = models.ForeignKey(
        "orchestration.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    agent = models.CharField(max_length=63)
    tool = models.CharField(max_length=150)
    arguments = models.JSONField()
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED)
    # Why the gateway refused, or what the tool raised.
    error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    # The tool definition the call was checked against, and what the gate decided.
    definition_hash = models.CharField(max_length=64, blank=True)
    decision = models.CharField(max_length=8, blank=True)  # "allow", "ask" or "deny"
    attempts = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.tool} ({self.status}) {self.idempotency_key}"


class ToolBreaker(models.Model):
    """The circuit breaker of one tool, shared by every worker (see engine/breaker.py)."""

    tool = models.CharField(max_length=150, unique=True)
    state = models.CharField(max_length=16, default="closed")
    failures = models.JSONField(default=list)
    opened_at = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tool}: {self.state}"


class PolicyViolation(models.Model):
    """A call the gate refused, with the check that refused it and why, for admins."""

    class Check(models.TextChoices):
        UNKNOWN_TOOL = "unknown_tool"
        DISABLED = "disabled"
        NO_GRANT = "no_grant"
        GRANT_EXPIRED = "grant_expired"
        DEFINITION_CHANGED = "definition_changed"
        INVALID_ARGUMENTS = "invalid_arguments"
        CONSTRAINT = "constraint"
        RATE_LIMIT = "rate_limit"
        CIRCUIT_OPEN = "circuit_open"
        APPROVAL_REJECTED = "approval_rejected"
        APPROVAL_EXPIRED = "approval_expired"
        APPROVAL_MISMATCH = "approval_mismatch"
        INVALID_OUTPUT = "invalid_output"
        RUN_NOT_ACTIVE = "run_not_active"

    created_at = models.DateTimeField(auto_now_add=True)
    run = models.ForeignKey(
        "orchestration.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    agent = models.CharField(max_length=63)
    tool = models.CharField(max_length=150)
    failed_check = models.CharField(max_length=24, choices=Check.choices)
    reason = models.TextField()
    arguments = models.JSONField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at"], name="violation_newest")]

    def __str__(self) -> str:
        return f"{self.agent} → {self.tool}: {self.failed_check}"


class ToolRateWindow(models.Model):
    """Calls of one tool in one minute, counted by the gate for the tool's rate limit."""

    tool = models.CharField(max_length=150)
    window_start = models.DateTimeField()
    calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tool", "window_start"], name="one_rate_window")
        ]

    def __str__(self) -> str:
        return f"{self.tool} at {self.window_start}: {self.calls}"
