"""A simulated operator for the learning tests: tickets from the shipped training split go
through the support desk, and each task is decided as a careful person would, knowing the
dataset's true labels: the classifier's labels corrected where wrong, the draft's opening
fixed for the true category, and the desk's own greeting and sign-off put in."""

import hashlib
from dataclasses import dataclass

from django.contrib.auth.models import User

from orchestration import dataset
from orchestration.dataset import LabelledTicket
from orchestration.engine.states import TaskStatus
from orchestration.models import HumanTask, PolicyVersion
from orchestration.providers.local import _OPENERS
from orchestration.services.decisions import decide_task
from orchestration.services.knowledge import load_resolved_tickets, upsert_articles
from orchestration.services.policies import train_triage_version
from orchestration.services.tickets import NewTicket, ingest_tickets

HOUSE_OPENING = "Thank you for your patience while we looked into this for you."
HOUSE_CLOSING = (
    "We answer every message within one working day, and you can also reach us by chat "
    "in the app on weekdays from 8:00 to 18:00 CET.\n\nKind regards,\nSam, Tallybook Support"
)
STOCK_CLOSING = (
    "If anything is still unclear, just reply to this email.\n\n"
    "Best regards,\nThe Tallybook support team"
)


@dataclass
class Tally:
    decided: int = 0
    corrected: int = 0
    edited: int = 0
    auto_sent: int = 0


def desk(weak_examples: int | None = None) -> PolicyVersion:
    """Articles, resolved history and a triage model: the full one, or a weak one trained
    on the first ``weak_examples`` tickets of the training split."""
    upsert_articles(rows=dataset.articles())
    train, _ = dataset.split()
    load_resolved_tickets(tickets=train)
    return train_triage_version(examples=weak_examples)


def house_reply(draft: str, true_category: str) -> str:
    """What the simulated operator sends: the draft with the opener for the true category,
    the desk's own opening line and sign-off."""
    text = draft
    for opener in _OPENERS.values():
        text = text.replace(opener, _OPENERS.get(true_category, opener))
    if HOUSE_OPENING not in text:
        first, _, rest = text.partition("\n\n")
        text = f"{first}\n\n{HOUSE_OPENING}\n\n{rest}"
    return text.replace(STOCK_CLOSING, HOUSE_CLOSING)


def tickets(count: int, offset: int = 0) -> list[LabelledTicket]:
    train, _ = dataset.split()
    return list(train[offset : offset + count])


def feed(
    labelled: list[LabelledTicket],
    operators: User | list[User],
    captured,
    *,
    label_for=None,
) -> Tally:
    """Each ticket through the desk, and its task decided by the operators in turn.
    ``label_for`` gives the category the operator sets (default: the true one)."""
    team = operators if isinstance(operators, list) else [operators]
    tally = Tally()
    for n, known in enumerate(labelled):
        digest = hashlib.sha256(f"{known.external_id}:{n}".encode()).hexdigest()[:8]
        with captured(execute=True):
            (ticket,) = ingest_tickets(
                tickets=[
                    NewTicket(
                        subject=known.subject,
                        body=known.body,
                        customer_email=f"customer-{digest}@example.com",
                        customer_name=known.customer_name,
                    )
                ],
                actor_label="simulation",
            )
        task = HumanTask.objects.filter(run__ticket=ticket, status=TaskStatus.OPEN).first()
        if task is None:
            tally.auto_sent += 1
            continue
        category = label_for(known) if label_for else known.category
        draft = task.proposal["draft"]
        final = house_reply(draft, category)
        codes = []
        if category != task.category:
            codes.append("wrong_category")
            tally.corrected += 1
        if known.urgency != task.urgency:
            codes.append("wrong_urgency")
        if final.strip() != draft.strip():
            codes.append("tone")
            tally.edited += 1
        with captured(execute=True):
            decide_task(
                task_id=task.pk,
                actor=team[n % len(team)],
                action="edit" if final.strip() != draft.strip() else "approve",
                final_text=final,
                reason_codes=codes,
                corrected_category=category,
                corrected_urgency=known.urgency,
            )
        tally.decided += 1
    return tally
