from django.conf import settings
from django.db import models
from django.utils import timezone

from orchestration.engine.limits import Limits, Usage
from orchestration.engine.states import FINAL_RUN_STATUSES, RunStatus, StepStatus
from orchestration.engine.workflow import NodeKind


def default_limits() -> Limits:
    """The deployment's defaults for what a workflow's config leaves out."""
    return Limits(
        step_soft_seconds=settings.STEP_SOFT_TIME_LIMIT_SECONDS,
        step_hard_seconds=settings.STEP_HARD_TIME_LIMIT_SECONDS,
    )


class Run(models.Model):
    """One pass of a ticket through a workflow version."""

    workflow = models.ForeignKey("orchestration.Workflow", on_delete=models.PROTECT)
    ticket = models.ForeignKey(
        "orchestration.Ticket", on_delete=models.PROTECT, related_name="runs"
    )
    status = models.CharField(
        max_length=16, choices=[(s, s) for s in RunStatus], default=RunStatus.QUEUED
    )
    # What the run came to: "auto_sent", "sent" (after a person approved) or "rejected".
    outcome = models.CharField(max_length=16, blank=True)
    # Each finished node's output, by node name: what later nodes read.
    state = models.JSONField(default=dict)
    step_count = models.PositiveIntegerField(default=0)
    # Finished visits per node, by node name: what the loop limit counts.
    visits = models.JSONField(default=dict)
    # Extra budget a person granted when resuming a paused run: {"steps": n, "tokens": n, ...}.
    extra_budget = models.JSONField(default=dict)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The runs screen lists the newest runs, optionally of one status.
            models.Index(fields=["status", "-created_at"], name="run_status_created"),
            models.Index(fields=["-created_at"], name="run_created"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk}"

    @property
    def limits(self) -> Limits:
        """The workflow version's limits plus whatever extra budget people granted."""
        return Limits.from_config(self.workflow.config, base=default_limits()).raised(
            **self.extra_budget
        )

    @property
    def usage(self) -> Usage:
        return Usage(
            steps=self.step_count,
            visits=self.visits,
            tokens=self.input_tokens + self.output_tokens,
        )

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_RUN_STATUSES

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


class StepQuerySet(models.QuerySet["Step"]):
    def still_claimed(self, step: "Step") -> "StepQuerySet":
        """The step, only while the claim this worker took is current: still running, at the
        attempt it claimed. An update through this touches nothing once the lease was handed
        to another worker or the run was cancelled."""
        return self.filter(pk=step.pk, status=StepStatus.RUNNING, attempt=step.attempt)


class Step(models.Model):
    """One node's execution within a run. A worker owns a step only after claiming it with a
    conditional update from ``pending``; a second delivery of the same message finds it claimed."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    sequence = models.PositiveIntegerField()
    node = models.CharField(max_length=63)
    kind = models.CharField(max_length=8, choices=[(k, k) for k in NodeKind])
    agent = models.CharField(max_length=63, blank=True)
    status = models.CharField(
        max_length=16, choices=[(s, s) for s in StepStatus], default=StepStatus.PENDING
    )
    attempt = models.PositiveSmallIntegerField(default=0)
    input = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    error_kind = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # When the step's message was last sent; the sweeper re-sends one that waited too long.
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = StepQuerySet.as_manager()

    class Meta:
        ordering = ["run", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["run", "sequence"], name="step_run_sequence"),
        ]
        indexes = [
            # The sweeper looks for running steps whose lease has expired.
            models.Index(
                fields=["lease_expires_at"],
                name="step_running_lease",
                condition=models.Q(status=StepStatus.RUNNING),
            ),
            # The sweeper looks for pending steps whose message may have been lost.
            models.Index(
                fields=["queued_at"],
                name="step_pending_queued",
                condition=models.Q(status=StepStatus.PENDING),
            ),
        ]

    def __str__(self) -> str:
        return f"step {self.sequence} ({self.node}) of run {self.run_id}"

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None
