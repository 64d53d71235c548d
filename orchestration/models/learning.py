from django.conf import settings
from django.db import models


class PolicyVersion(models.Model):
    """A learned parameter set of one agent, versioned: the triage classifier, the drafter's
    exemplars, the decider's auto-send thresholds.

    At most one version per agent is active. A candidate is evaluated against the version
    that was active when it was made (``baseline``) and is promoted, rejected by the
    evaluation gate, or left for an admin; promoted versions are retired when another
    takes their place, and any earlier version may be made active again (a rollback)."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        ACTIVE = "active"
        RETIRED = "retired"
        # Worse than its baseline on a guarded metric: never promoted.
        REJECTED = "rejected"

    agent = models.CharField(max_length=63)
    version = models.PositiveIntegerField()
    artifact = models.BinaryField()
    artifact_sha256 = models.CharField(max_length=64)
    # The version's own scores (the evaluation's, or the held-out split's for a first model).
    metrics = models.JSONField(default=dict)
    # What it learned from: the dataset and split, the decisions' count and range.
    lineage = models.JSONField(default=dict)
    # The decisions it learned from, listed on the learning screen.
    learned_from = models.ManyToManyField(
        "orchestration.Decision", blank=True, related_name="policy_versions"
    )
    baseline = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The evaluation gate's record: both versions' scores, each guarded metric's verdict.
    evaluation = models.JSONField(default=dict, blank=True)
    cycle = models.ForeignKey(
        "orchestration.LearningCycle",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="candidates",
    )
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


class LearningCycle(models.Model):
    """One run of the learner: what started it, which decisions it read, what it proposed."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        DECISIONS = "decisions"
        CONSOLE = "console"
        COMMAND = "command"

    class Status(models.TextChoices):
        RUNNING = "running"
        FINISHED = "finished"
        FAILED = "failed"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    # The newest decision it read; the next cycle counts new decisions from here.
    last_decision = models.ForeignKey(
        "orchestration.Decision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decisions = models.PositiveIntegerField(default=0)
    # Per agent: the candidate made (or why none was) and the gate's verdict.
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One cycle at a time: a second trigger while one runs is a no-op.
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="running"), name="one_running_cycle"
            )
        ]

    def __str__(self) -> str:
        return f"learning cycle {self.pk} ({self.status})"


class LearningSettings(models.Model):
    """What admins set for the learner of one workflow; one row per workflow name."""

    class Promotion(models.TextChoices):
        AUTOMATIC = "automatic"
        MANUAL = "manual"

    workflow = models.CharField(max_length=100, unique=True)
    # A candidate that passes the gate is promoted at once, or waits for an admin's click.
    promotion = models.CharField(max_length=16, choices=Promotion.choices, default=Promotion.MANUAL)
    # The decider auto-sends a category only where the lower confidence bound of "approved
    # without edits" stays at or above this.
    target_precision = models.FloatField(default=0.95)
    # Decisions a category needs before it may auto-send.
    min_evidence = models.PositiveIntegerField(default=30)
    # A learning cycle starts after this many new decisions (and on the beat schedule).
    decisions_per_cycle = models.PositiveIntegerField(default=50)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"learning settings of {self.workflow}"


class Exemplar(models.Model):
    """An approved reply the drafter may follow for similar tickets of its category. Edited
    replies weigh more: a person put work into them. A retired exemplar is never used again."""

    decision = models.OneToOneField(
        "orchestration.Decision", on_delete=models.CASCADE, related_name="exemplar"
    )
    category = models.CharField(max_length=32)
    ticket_text = models.TextField()
    # The agent's draft, and the reply the person sent: the difference is what they taught.
    draft = models.TextField(blank=True)
    reply = models.TextField()
    weight = models.FloatField(default=1.0)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retire_reason = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["category", "created_at"], name="exemplar_category")]

    def __str__(self) -> str:
        return f"exemplar {self.pk} ({self.category})"
