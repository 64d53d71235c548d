"""The knowledge base and the resolved tickets that research retrieves as precedent."""

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from orchestration.dataset import LabelledTicket
from orchestration.models import KnowledgeArticle, Ticket
from orchestration.services.audit import record_event


def upsert_articles(*, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Create or update articles by slug; returns (created, updated)."""
    created = updated = 0
    with transaction.atomic():
        for row in rows:
            _, was_created = KnowledgeArticle.objects.update_or_create(
                slug=row["slug"],
                defaults={
                    "title": row["title"],
                    "category": row["category"],
                    "summary": row["summary"],
                    "body": row["body"],
                    "tags": row.get("tags", []),
                },
            )
            created += was_created
            updated += not was_created
        record_event(
            action="knowledge.loaded",
            object_type="knowledge_base",
            after={"created": created, "updated": updated},
        )
    return created, updated


def load_resolved_tickets(*, tickets: Iterable[LabelledTicket]) -> int:
    """Store labelled, already-resolved tickets (no runs) so research can cite them."""
    tickets = list(tickets)
    with transaction.atomic():
        known = set(
            Ticket.objects.filter(external_id__in=[t.external_id for t in tickets]).values_list(
                "external_id", flat=True
            )
        )
        fresh = [
            Ticket(
                external_id=t.external_id,
                subject=t.subject,
                body=t.body,
                customer_name=t.customer_name,
                customer_email=t.customer_email,
                channel="history",
                status=Ticket.Status.RESOLVED,
                known_category=t.category,
                known_urgency=t.urgency,
                resolution=t.resolution,
                answer_slugs=list(t.answer_slugs),
            )
            for t in tickets
            if t.external_id not in known
        ]
        Ticket.objects.bulk_create(fresh)
        if fresh:
            record_event(
                action="tickets.history_loaded",
                object_type="ticket",
                after={"count": len(fresh)},
            )
    return len(fresh)
