"""Ticket intake: tickets arrive (API, import file, demo) and each starts a run; later, a
ticket's category, urgency and status may be corrected."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from orchestration.models import Ticket
from orchestration.models.taxonomy import Category, Urgency
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


# The fields of a ticket a tool may change, by the names callers use, and their columns.
EDITABLE_TICKET_FIELDS = {
    "category": "known_category",
    "urgency": "known_urgency",
    "status": "status",
}
_ALLOWED_VALUES = {
    "category": set(Category.values),
    "urgency": set(Urgency.values),
    "status": set(Ticket.Status.values),
}


def update_ticket_fields(*, ticket_id: int, fields: dict[str, str], actor_label: str) -> list[str]:
    """Set a ticket's category, urgency or status, and return the names of the fields whose
    value changed. Setting a field to the value it has changes nothing and records nothing,
    so the same update made twice acts once. An unknown field or value is refused whole."""
    if not fields:
        raise ValueError("name at least one field to update")
    for name, value in fields.items():
        if name not in EDITABLE_TICKET_FIELDS:
            raise ValueError(f"{name!r} is not a ticket field that can be updated")
        if value not in _ALLOWED_VALUES[name]:
            raise ValueError(f"{value!r} is not a valid {name}")
    with transaction.atomic():
        ticket = Ticket.objects.select_for_update().filter(pk=ticket_id).first()
        if ticket is None:
            raise LookupError(f"there is no ticket {ticket_id}")
        before: dict[str, str] = {}
        after: dict[str, str] = {}
        for name, value in fields.items():
            column = EDITABLE_TICKET_FIELDS[name]
            if getattr(ticket, column) != value:
                before[name], after[name] = getattr(ticket, column), value
                setattr(ticket, column, value)
        if after:
            ticket.save(update_fields=[EDITABLE_TICKET_FIELDS[name] for name in after])
            record_event(
                action="ticket.updated",
                actor_label=actor_label,
                object_type="ticket",
                object_id=ticket.pk,
                before=before,
                after=after,
            )
    return list(after)
