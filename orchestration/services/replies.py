"""The outbox."""

from django.db import transaction

from orchestration.models import Reply
from orchestration.services.audit import record_event


def send_reply(
    *, ticket_id: int, run_id: int, body: str, approved_by_id: int | None, idempotency_key: str
) -> tuple[Reply, bool]:
    """Write the reply to the outbox once per idempotency key. A second call with the same key
    returns the first reply untouched (the unique key holds this in the database too)."""
    with transaction.atomic():
        reply, created = Reply.objects.get_or_create(
            idempotency_key=idempotency_key,
            defaults={
                "ticket_id": ticket_id,
                "run_id": run_id,
                "body": body,
                "approved_by_id": approved_by_id,
            },
        )
        if created:
            record_event(
                action="reply.sent",
                actor_label="agent:sender",
                object_type="reply",
                object_id=reply.pk,
                after={"ticket": ticket_id, "run": run_id, "approved_by": approved_by_id},
            )
    return reply, created
