"""The audit trail: append one event, verify the whole chain."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from orchestration.models import AuditChainHead, AuditEvent

SYSTEM = "system"


def _canonical(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)


def _digest(previous_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((previous_hash + _canonical(fields)).encode()).hexdigest()


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


# Appending inside a single-statement write (services.statements). The hash is the one
# _digest computes: the canonical JSON's keys are sorted, so it ends with the object id, the
# object type and the sequence, and everything before the object id is known beforehand.
# The statement locks the head, joins the known text to the object id (which may be a row
# the same statement inserts) and the next sequence, and hashes it with PostgreSQL's sha256.
HEAD, EVENT = AuditChainHead._meta.db_table, AuditEvent._meta.db_table


def append_ctes(*, source: str, object_id: str, after: tuple[str, ...] = ()) -> str:
    """CTEs that append one event to the chain if ``source`` yields a row; ``object_id`` is
    an SQL expression over ``source`` giving the event's object id as decimal text (only
    digits: it joins the hashed text unescaped).

    The head's ``FOR UPDATE`` returns its newest committed version, so concurrent appends,
    single-statement or through record_event, queue on it and chain in order. The head is
    the last lock a writer takes, as record_event's callers take it: PostgreSQL runs the
    data-modifying CTEs that nothing reads at the end of a statement, in an order of its
    own, so the CTEs named in ``after`` (which must return rows) are read before the head
    is locked. A statement using these must also be gated on ``HEAD_EXISTS``: without the
    head, nothing is appended. The event's time is taken before the head's lock, so under
    contention it may be a moment earlier than its predecessor's; the sequence orders."""
    read_first = "".join(f" AND (SELECT count(*) FROM {name}) >= 0" for name in after)  # noqa: S608 (CTE names)
    return f"""
chain_head AS (
    SELECT h.last_sequence, h.last_hash, {object_id} AS object_id
    FROM {HEAD} AS h, {source}
    WHERE h.id = 1{read_first}
    FOR UPDATE OF h
), chained AS (
    UPDATE {HEAD} AS h
    SET last_sequence = c.last_sequence + 1,
        last_hash = encode(sha256(convert_to(
            c.last_hash || %(audit_text_to_id)s || c.object_id || %(audit_text_to_sequence)s
            || (c.last_sequence + 1)::text || '}}', 'UTF8')), 'hex')
    FROM chain_head AS c
    WHERE h.id = 1
    RETURNING h.last_sequence, h.last_hash, c.last_hash AS previous_hash, c.object_id
), audited AS (
    INSERT INTO {EVENT} (sequence, created_at, actor_id, actor_label, action, object_type,
                         object_id, before, after, previous_hash, hash)
    SELECT last_sequence, %(audit_created_at)s, %(audit_actor)s, %(audit_actor_label)s,
           %(audit_action)s, %(audit_object_type)s, object_id, %(audit_before)s,
           %(audit_after)s, previous_hash, last_hash
    FROM chained
)"""  # noqa: S608


HEAD_EXISTS = f"EXISTS (SELECT 1 FROM {HEAD} WHERE id = 1)"  # noqa: S608


def append_params(
    *,
    action: str,
    actor: AbstractBaseUser | None = None,
    actor_label: str = "",
    object_type: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The parameters of ``append_ctes``, with the event's fields as record_event takes
    them (the object id comes from the statement)."""
    label = actor_label or (actor.get_username() if actor is not None else SYSTEM)
    created_at = timezone.now()
    before, after = _json_safe(before), _json_safe(after)
    known = {
        "created_at": created_at.isoformat(),
        "actor_id": actor.pk if actor is not None else None,
        "actor_label": label,
        "action": action,
        "before": before,
        "after": after,
    }
    return {
        "audit_text_to_id": _canonical(known)[:-1] + ',"object_id":"',
        "audit_text_to_sequence": '","object_type":' + json.dumps(object_type) + ',"sequence":',
        "audit_created_at": created_at,
        "audit_actor": known["actor_id"],
        "audit_actor_label": label,
        "audit_action": action,
        "audit_object_type": object_type,
        "audit_before": None if before is None else Jsonb(before),
        "audit_after": None if after is None else Jsonb(after),
    }


# The parameters of append_ctes for a statement that appends no event this time.
NO_EVENT: dict[str, Any] = dict.fromkeys(
    (
        "audit_text_to_id",
        "audit_text_to_sequence",
        "audit_created_at",
        "audit_actor",
        "audit_actor_label",
        "audit_action",
        "audit_object_type",
        "audit_before",
        "audit_after",
    )
)


def ensure_chain_head() -> None:
    """Create the chain's head row if it is missing (a fresh or flushed database)."""
    AuditChainHead.objects.get_or_create(pk=1)
