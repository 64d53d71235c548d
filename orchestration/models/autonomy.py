from django.db import models

from orchestration.engine.autonomy import AutonomyStatus
from orchestration.models.taxonomy import Category


class CategoryAutonomy(models.Model):
    """Whether one category of one workflow may send replies without a person, and why.

    Every category starts in shadow mode. The status is changed only by
    services.autonomy.reassess_category, from the evidence rows, and each change is audited."""

    workflow = models.CharField(max_length=100)
    category = models.CharField(max_length=32, choices=Category.choices)
    status = models.CharField(
        max_length=16,
        choices=[(s, s) for s in AutonomyStatus],
        default=AutonomyStatus.SHADOW,
    )
    # When the status last changed, and the evidence that counts: only evidence from the
    # last loss of autonomy on (a category that lost autonomy must earn it again afresh).
    changed_at = models.DateTimeField(auto_now_add=True)
    evidence_since = models.DateTimeField(null=True, blank=True)
    why = models.TextField(blank=True)
    # The bound's inputs when last judged, for the Learning screen.
    recommendations = models.PositiveIntegerField(default=0)
    right = models.PositiveIntegerField(default=0)
    lower_bound = models.FloatField(default=0.0)
    # Replies sent alone since it last earned autonomy: the first ones are reviewed more.
    auto_sent_since_earned = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow", "category"], name="one_autonomy_row")
        ]

    def __str__(self) -> str:
        return f"{self.workflow}/{self.category}: {self.status}"

    @classmethod
    def earned(cls, category: str, workflow: str) -> bool:
        """Whether ``category`` may send replies alone now (a category never judged may not)."""
        return cls.objects.filter(
            workflow=workflow, category=category, status=AutonomyStatus.EARNED
        ).exists()


class AutonomyEvidence(models.Model):
    """One would-send recommendation of the decider, and whether it was right: sent
    unchanged by a person in shadow mode, reviewed as right after it went out alone, or
    (the shipped history) right by the ticket's real resolution."""

    class Source(models.TextChoices):
        HISTORY = "history"  # the shipped resolved tickets, replayed (learning.decider_training)
        DECISION = "decision"  # a person decided the ticket in shadow mode
        REVIEW = "review"  # a person reviewed a reply that went out alone

    workflow = models.CharField(max_length=100)
    category = models.CharField(max_length=32, choices=Category.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    right = models.BooleanField()
    score = models.FloatField()
    run = models.ForeignKey(
        "orchestration.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision = models.OneToOneField(
        "orchestration.Decision",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="autonomy_evidence",
    )
    # What it is about, readably: a ticket's external id, or "run 12".
    ref = models.CharField(max_length=120)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # reassess_category: a category's evidence since its last loss.
            models.Index(fields=["workflow", "category", "created_at"], name="evidence_by_category")
        ]

    def __str__(self) -> str:
        return f"{self.category} {'right' if self.right else 'wrong'} ({self.source})"
