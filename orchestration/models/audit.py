from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """An entry of the append-only, hash-chained audit trail.

    ``hash`` covers this event's content and ``previous_hash``, so editing or deleting any
    event breaks every hash after it; ``manage.py verify_audit`` walks the chain. On
    PostgreSQL a trigger refuses UPDATE and DELETE outright."""

    sequence = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Who acted when no person did: "system", "agent:triage", "api:<username>", ...
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-sequence"]
        indexes = [
            # The audit screen filters one kind of action, newest first.
            models.Index(fields=["action", "-sequence"], name="audit_action_sequence"),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action}"


class AuditChainHead(models.Model):
    """The single row that serialises appends to the chain: a writer locks it, reads the last
    sequence and hash, appends, and moves it forward in the same transaction."""

    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit chain at #{self.last_sequence}"
