"""The audit trail: append one event, verify the whole chain."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from orchestration.models import AuditChainHead, AuditEvent

SYSTEM = "system"


def _digest(previous_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    return hashlib.sha256((previous_hash + canonical).encode()).hexdigest()


def _hashed_fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "sequence": event.sequence,
        "created_at": event.created_at.isoformat(),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before,
        "after": event.after,
    }


def record_event(
    *,
    action: str,
    actor: AbstractBaseUser | None = None,
    actor_label: str = "",
    object_type: str = "",
    object_id: object = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the chain. Appends are serialised by a lock on the chain head, so
    the sequence has no gaps and every event hashes its predecessor; callers make this the
    last write of their transaction to hold that lock as briefly as possible."""
    label = actor_label or (actor.get_username() if actor is not None else SYSTEM)
    # No savepoint: the event belongs to the caller's transaction and fails with it.
    with transaction.atomic(savepoint=False):
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        event = AuditEvent(
            sequence=head.last_sequence + 1,
            created_at=timezone.now(),
            actor=actor,
            actor_label=label,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=_json_safe(before),
            after=_json_safe(after),
            previous_hash=head.last_hash,
        )
        event.hash = _digest(head.last_hash, _hashed_fields(event))
        event.save(force_insert=True)
        AuditChainHead.objects.filter(pk=1).update(
            last_sequence=event.sequence, last_hash=event.hash
        )
    return event


def _json_safe(value: dict[str, Any] | None) -> dict[str, Any] | None:
    # Round-trip through the encoder so the stored JSON is exactly what was hashed.
    if value is None:
        return None
    result: dict[str, Any] = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    return result


@dataclass(frozen=True)
class ChainReport:
    events: int
    first_bad_sequence: int | None
    problem: str

    @property
    def intact(self) -> bool:
        return self.first_bad_sequence is None


def verify_chain() -> ChainReport:
    """Recompute every hash in order; report the first event that does not match."""
    previous = "0" * 64
    expected_sequence = 1
    count = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=2000):
        count += 1
        if event.sequence != expected_sequence:
            return ChainReport(count, event.sequence, f"sequence {expected_sequence} is missing")
        if event.previous_hash != previous:
            return ChainReport(count, event.sequence, "does not follow its predecessor's hash")
        if _digest(previous, _hashed_fields(event)) != event.hash:
            return ChainReport(count, event.sequence, "content does not match its hash")
        previous = event.hash
        expected_sequence += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is not None and head.last_sequence != count:
        return ChainReport(count, count + 1, f"events after #{count} are missing")
    return ChainReport(count, None, "")
