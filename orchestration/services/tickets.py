"""Ticket intake: tickets arrive (API, import file, demo) and each starts a run."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from orchestration.models import Ticket
from orchestration.services.audit import record_event
from orchestration.services.runs import start_run


@dataclass(frozen=True)
class NewTicket:
    subject: str
    body: str
    customer_email: str
    customer_name: str = ""
    external_id: str | None = None
    channel: str = "api"
    known_category: str = ""
    known_urgency: str = ""


class DuplicateTicket(ValueError):
    def __init__(self, external_ids: list[str], *, within_batch: bool = False) -> None:
        where = "appear more than once in this batch" if within_batch else "already exist"
        super().__init__(f"tickets with these external ids {where}: {', '.join(external_ids)}")
        self.external_ids = external_ids


def ingest_tickets(
    *, tickets: Sequence[NewTicket], actor: AbstractBaseUser | None = None, actor_label: str = ""
) -> list[Ticket]:
    """Store the tickets and start a run for each, all or nothing: if any ticket is refused
    (an external id seen before, or twice in the batch) none is stored."""
    ids = [t.external_id for t in tickets if t.external_id]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise DuplicateTicket(repeated, within_batch=True)
    with transaction.atomic():
        existing = sorted(
            Ticket.objects.filter(external_id__in=ids).values_list("external_id", flat=True)
        )
        if existing:
            raise DuplicateTicket(existing)
        stored = []
        for new in tickets:
            ticket = Ticket.objects.create(
                external_id=new.external_id or None,
                subject=new.subject,
                body=new.body,
                customer_email=new.customer_email,
                customer_name=new.customer_name,
                channel=new.channel,
                submitted_by=actor,
                known_category=new.known_category,
                known_urgency=new.known_urgency,
            )
            run = start_run(ticket=ticket)
            record_event(
                action="ticket.ingested",
                actor=actor,
                actor_label=actor_label,
                object_type="ticket",
                object_id=ticket.pk,
                after={"run": run.pk, "channel": ticket.channel, "external_id": ticket.external_id},
            )
            stored.append(ticket)
    return stored
