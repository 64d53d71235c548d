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
    tool = models.CharField(max_length=100)
    arguments = models.JSONField()
    result = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STARTED)
    # Why the gateway refused, or what the tool raised.
    error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.tool} ({self.status}) {self.idempotency_key}"


class ToolBreaker(models.Model):
    """The circuit breaker of one tool, shared by every worker (see engine/breaker.py)."""

    tool = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=16, default="closed")
    failures = models.JSONField(default=list)
    opened_at = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.tool}: {self.state}"
