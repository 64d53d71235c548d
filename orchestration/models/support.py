from django.conf import settings
from django.db import models

from orchestration.models.taxonomy import Category, Urgency


class Ticket(models.Model):
    """A customer's request. ``known_category`` and ``known_urgency`` are labels supplied with
    the ticket (the shipped dataset, an import file); the agents never read them."""

    class Status(models.TextChoices):
        OPEN = "open"
        ANSWERED = "answered"
        CLOSED = "closed"
        RESOLVED = "resolved"

    external_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    customer_name = models.CharField(max_length=200, blank=True)
    customer_email = models.EmailField()
    channel = models.CharField(max_length=32, default="api")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    known_category = models.CharField(max_length=32, choices=Category.choices, blank=True)
    known_urgency = models.CharField(max_length=16, choices=Urgency.choices, blank=True)
    # How support resolved it; resolved tickets with a resolution are retrieved as precedent.
    resolution = models.TextField(blank=True)
    # The help articles that answer it (slugs, most-answering first); empty when none does
    # and a person had to handle it. Known for the shipped data and resolved history; research
    # lets similar resolved tickets vote for the articles that answered them.
    answer_slugs = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.subject


class KnowledgeArticle(models.Model):
    slug = models.SlugField(max_length=120, unique=True)
    title = models.CharField(max_length=200)
    category = models.CharField(max_length=32, choices=Category.choices)
    summary = models.TextField()
    body = models.TextField()
    tags = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.title


class Reply(models.Model):
    """The outbox. A reply is written once per idempotency key, whatever retries happen."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="replies")
    run = models.ForeignKey("orchestration.Run", on_delete=models.PROTECT, related_name="replies")
    body = models.TextField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "replies"

    def __str__(self) -> str:
        return f"reply to ticket {self.ticket_id}"


class Refund(models.Model):
    """Money given back to a customer: one row per idempotency key, never edited. The
    database refuses an amount that is not positive, whatever the caller checked."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="refunds")
    run = models.ForeignKey("orchestration.Run", on_delete=models.PROTECT, related_name="refunds")
    amount = models.DecimalField(max_digits=8, decimal_places=2)
    currency = models.CharField(max_length=3)
    reason = models.TextField()
    idempotency_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive")
        ]

    def __str__(self) -> str:
        return f"refund of {self.amount} {self.currency} on ticket {self.ticket_id}"
