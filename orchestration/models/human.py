from django.conf import settings
from django.db import models

from orchestration.engine.states import DecisionOutcome, TaskKind, TaskStatus
from orchestration.models.taxonomy import Category, Urgency


class HumanTask(models.Model):
    """A request for a person to decide: approve, edit or reject what the agents propose.

    ``version`` rises with every change so that a form posted against an older version is
    refused instead of overwriting a decision the operator never saw."""

    run = models.ForeignKey("orchestration.Run", on_delete=models.CASCADE, related_name="tasks")
    # A step may ask more than once over its life (an approval of a tool call, then an
    # exception when the call is refused), but only one of its tasks is open at a time.
    step = models.ForeignKey("orchestration.Step", on_delete=models.CASCADE, related_name="tasks")
    kind = models.CharField(max_length=16, choices=[(k, k) for k in TaskKind])
    status = models.CharField(
        max_length=16, choices=[(s, s) for s in TaskStatus], default=TaskStatus.OPEN
    )
    # What the agents propose: the draft, the classification and the evidence behind it.
    proposal = models.JSONField()
    # Copied out of the proposal so that the queue can sort and filter in the database.
    category = models.CharField(max_length=32, choices=Category.choices)
    urgency = models.CharField(max_length=16, choices=Urgency.choices)
    urgency_rank = models.PositiveSmallIntegerField()
    confidence = models.FloatField()
    reason = models.CharField(max_length=300, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The approval queue: open tasks, most urgent first, oldest first within urgency.
            models.Index(
                fields=["-urgency_rank", "created_at"],
                name="task_open_queue",
                condition=models.Q(status=TaskStatus.OPEN),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["step"],
                condition=models.Q(status=TaskStatus.OPEN),
                name="one_open_task_per_step",
            )
        ]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.kind}, {self.status})"


class Decision(models.Model):
    """What a person decided on a task. The actor always comes from the session.

    Besides the outcome it holds the feedback the learner reads: how far the final text is
    from the draft, why (reason codes), and the category and urgency the person corrected."""

    task = models.OneToOneField(HumanTask, on_delete=models.CASCADE, related_name="decision")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=16, choices=[(o, o) for o in DecisionOutcome])
    final_text = models.TextField(blank=True)
    # A line diff between the proposal and the final text: [{"op": "equal"|"insert"|...}].
    diff = models.JSONField(default=list)
    # The person's note (required for a rejection).
    reason = models.TextField(blank=True)
    # Codes from settings.FEEDBACK_REASON_CODES, e.g. ["wrong_category", "tone"].
    reason_codes = models.JSONField(default=list, blank=True)
    # The size of the edit: characters inserted plus deleted between draft and final text,
    # and their similarity (1.0 unchanged). Null where nothing was sent (a rejection).
    edit_chars = models.PositiveIntegerField(default=0)
    similarity = models.FloatField(null=True, blank=True)
    # The labels the person set when the classifier was wrong; blank when it was right.
    corrected_category = models.CharField(max_length=32, choices=Category.choices, blank=True)
    corrected_urgency = models.CharField(max_length=16, choices=Urgency.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # The learner reads decisions in the order they were made, from a point on.
            models.Index(fields=["created_at"], name="decision_created"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} by {self.actor_id}"

    @property
    def category(self) -> str:
        """The ticket's category as the person left it: corrected, or confirmed."""
        return self.corrected_category or self.task.category

    @property
    def urgency(self) -> str:
        return self.corrected_urgency or self.task.urgency
