"""Agent E's work and the admins' controls over it: learning cycles, candidate versions,
promotion, rollback, exemplars and the learner's settings. Every change to a learned
version, an exemplar or the settings goes through a function here and is audited."""

import hashlib
import logging
import threading
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from orchestration.agents.base import TicketView
from orchestration.engine.states import DecisionOutcome
from orchestration.learning import exemplars
from orchestration.learning.active import (
    TRIAGE,
    current_version,
)
from orchestration.models import (
    Decision,
    Exemplar,
    LearningCycle,
    LearningSettings,
    PolicyVersion,
)
from orchestration.services.audit import record_event
from orchestration.workflows import support_desk

log = logging.getLogger(__name__)
LEARNER = "agent:learner"
# A cycle still "running" after this long died with its worker; the next one replaces it.
STALE_CYCLE = timedelta(hours=1)


class LearningError(Exception):
    """A learning action that cannot be done; the message is meant for the admin, and
    ``field`` names the setting it is about, if one."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# Settings ---------------------------------------------------------------------------------


def learning_settings(workflow: str = support_desk.NAME) -> LearningSettings:
    found, _ = LearningSettings.objects.get_or_create(workflow=workflow)
    return found


def update_learning_settings(
    *,
    actor: AbstractBaseUser,
    promotion: str,
    target_precision: float,
    min_evidence: int,
    decisions_per_cycle: int,
    workflow: str = support_desk.NAME,
) -> LearningSettings:
    if promotion not in LearningSettings.Promotion.values:
        raise LearningError(
            f"Promotion must be one of {', '.join(LearningSettings.Promotion)}.", "promotion"
        )
    if not 0.5 <= target_precision < 1:
        raise LearningError(
            "The target precision must be at least 50% and below 100%.", "target_precision"
        )
    if min_evidence < 1:
        raise LearningError("A category needs at least 1 decision as evidence.", "min_evidence")
    if decisions_per_cycle < 1:
        raise LearningError("A cycle needs at least 1 new decision.", "decisions_per_cycle")
    with transaction.atomic():
        row = LearningSettings.objects.select_for_update().get(pk=learning_settings(workflow).pk)
        before = _settings_dict(row)
        row.promotion, row.target_precision = promotion, target_precision
        row.min_evidence, row.decisions_per_cycle = min_evidence, decisions_per_cycle
        row.updated_by = actor
        row.save()
        record_event(
            action="learning.settings_changed",
            actor=actor,
            object_type="learning_settings",
            object_id=row.pk,
            before=before,
            after=_settings_dict(row),
        )
    return row


def _settings_dict(row: LearningSettings) -> dict[str, Any]:
    return {
        "promotion": row.promotion,
        "target_precision": row.target_precision,
        "min_evidence": row.min_evidence,
        "decisions_per_cycle": row.decisions_per_cycle,
    }


def request_learning_cycle(*, actor: AbstractBaseUser) -> None:
    """Ask for a learning cycle now (the console's "learn now"); it runs on a worker. A
    request while a cycle runs is a no-op there."""
    from orchestration.tasks import learn_task

    record_event(
        action="learning.requested",
        actor=actor,
        object_type="learning_settings",
        object_id=learning_settings().pk,
    )
    if settings.REDIS_URL:
        transaction.on_commit(
            lambda: learn_task.delay(trigger=LearningCycle.Trigger.CONSOLE, actor_id=actor.pk)
        )
    else:  # the embedded default has no worker: a thread, so the page does not wait for it
        transaction.on_commit(lambda: threading.Thread(target=_learn_here, args=(actor,)).start())


def _learn_here(actor: AbstractBaseUser) -> None:
    from django.db import connection

    from orchestration.services.learning_cycle import run_learning_cycle

    try:
        run_learning_cycle(trigger=LearningCycle.Trigger.CONSOLE, actor=actor)
    except Exception:  # recorded on the cycle as failed
        log.exception("learning cycle asked for in the console failed")
    finally:
        connection.close()


# Versions -----------------------------------------------------------------------------------


def store_version(
    *,
    agent: str,
    blob: bytes,
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    status: str = PolicyVersion.Status.CANDIDATE,
    learned_from: list[int] | None = None,
    baseline: PolicyVersion | None = None,
    cycle: LearningCycle | None = None,
) -> PolicyVersion:
    """A new version of ``agent``'s learned parameters, numbered after the last one."""
    with transaction.atomic():
        latest = PolicyVersion.objects.filter(agent=agent).aggregate(v=Max("version"))["v"]
        version = PolicyVersion.objects.create(
            agent=agent,
            version=(latest or 0) + 1,
            artifact=blob,
            artifact_sha256=hashlib.sha256(blob).hexdigest(),
            metrics=metrics,
            lineage=lineage,
            baseline=baseline,
            cycle=cycle,
            status=PolicyVersion.Status.CANDIDATE,
        )
        if learned_from:
            version.learned_from.add(*learned_from)
        record_event(
            action="policy.trained",
            actor_label=LEARNER,
            object_type="policy",
            object_id=version.pk,
            after={"agent": agent, "version": version.version, "metrics": metrics},
        )
        if status == PolicyVersion.Status.ACTIVE:
            _activate(version, actor=None, action="policy.activated")
    return version


def promote_version(*, version_id: int, actor: AbstractBaseUser | None) -> PolicyVersion:
    """Switch a candidate on: only one that passed the evaluation gate against the version
    still in use. ``actor`` None is the learner's automatic promotion."""
    with transaction.atomic():
        version = _locked(version_id)
        if version.status != PolicyVersion.Status.CANDIDATE:
            raise LearningError(f"{version} is not a candidate.")
        if not version.evaluation.get("passed"):
            failed = ", ".join(version.evaluation.get("failures", [])) or "not evaluated"
            raise LearningError(f"{version} did not pass the evaluation gate ({failed}).")
        in_use = current_version(version.agent)
        if (in_use.pk if in_use else None) != version.baseline_id:
            raise LearningError(
                f"{version} was evaluated against another version than the one now active; "
                "the next learning cycle evaluates a fresh candidate."
            )
        for agent, evaluated in version.evaluation.get("evaluated_with", {}).items():
            now = current_version(agent)
            if (now.pk if now else None) != evaluated:
                raise LearningError(
                    f"{version} was evaluated with another {agent} version than the one now "
                    "active; the next learning cycle evaluates a fresh candidate."
                )
        _activate(version, actor=actor, action="policy.promoted")
    version.refresh_from_db()
    return version


def rollback_target(version: PolicyVersion) -> PolicyVersion | None:
    """The version a rollback of ``version`` makes active again: the one that was active
    before it (the last switched on of the retired ones; only an active one is retired)."""
    return (
        PolicyVersion.objects.filter(agent=version.agent, status=PolicyVersion.Status.RETIRED)
        .exclude(pk=version.pk)
        .defer("artifact")
        .order_by(F("promoted_at").desc(nulls_last=True), "-version")
        .first()
    )


def roll_back(*, version_id: int, actor: AbstractBaseUser) -> PolicyVersion | None:
    """Retire the active version ``version_id`` (the one the admin saw: if another became
    active since, nothing changes) and make the one active before it active again; returns
    that one (None: the drafter and decider then run without a learned version)."""
    with transaction.atomic():
        active = _locked(version_id)
        agent = active.agent
        if active.status != PolicyVersion.Status.ACTIVE:
            raise LearningError(f"{active} is not active; nothing was rolled back.")
        previous = rollback_target(active)
        if previous is None and agent == TRIAGE:
            raise LearningError("The triage classifier has no earlier version to go back to.")
        if previous is not None:
            _activate(_locked(previous.pk), actor=actor, action="policy.rolled_back")
            return previous
        PolicyVersion.objects.filter(pk=active.pk).update(status=PolicyVersion.Status.RETIRED)
        record_event(
            action="policy.rolled_back",
            actor=actor,
            object_type="policy",
            object_id=active.pk,
            before={"agent": agent, "active": active.version},
            after={"agent": agent, "active": None},
        )
        return None


def reactivate(*, version_id: int, actor: AbstractBaseUser) -> PolicyVersion:
    """Make an earlier version, one that was active once, active again (a rollback to it)."""
    with transaction.atomic():
        version = _locked(version_id)
        if version.status != PolicyVersion.Status.RETIRED:  # only an active one is retired
            raise LearningError(f"{version} was never active; only such a version comes back.")
        _activate(version, actor=actor, action="policy.rolled_back")
    version.refresh_from_db()
    return version


def _locked(version_id: int) -> PolicyVersion:
    try:
        return PolicyVersion.objects.select_for_update().defer("artifact").get(pk=version_id)
    except PolicyVersion.DoesNotExist:
        raise LearningError("This version does not exist.") from None


def _activate(version: PolicyVersion, *, actor: AbstractBaseUser | None, action: str) -> None:
    """Make ``version`` its agent's only active version, inside the caller's transaction."""
    previous = list(
        PolicyVersion.objects.select_for_update()
        .filter(agent=version.agent, status=PolicyVersion.Status.ACTIVE)
        .exclude(pk=version.pk)
        .values_list("version", flat=True)
    )
    PolicyVersion.objects.filter(agent=version.agent, status=PolicyVersion.Status.ACTIVE).exclude(
        pk=version.pk
    ).update(status=PolicyVersion.Status.RETIRED)
    PolicyVersion.objects.filter(pk=version.pk).update(
        status=PolicyVersion.Status.ACTIVE, promoted_at=timezone.now(), promoted_by=actor
    )
    record_event(
        action=action,
        actor=actor,
        actor_label="" if actor is not None else LEARNER,
        object_type="policy",
        object_id=version.pk,
        before={"agent": version.agent, "active_versions": previous},
        after={"agent": version.agent, "version": version.version},
    )


# Exemplars ----------------------------------------------------------------------------------


def retire_exemplar(*, exemplar_id: int, actor: AbstractBaseUser, reason: str) -> Exemplar:
    """Stop the drafter from following an exemplar, from its next draft on."""
    reason = reason.strip()
    if not reason:
        raise LearningError("Say why the exemplar is retired.")
    with transaction.atomic():
        try:
            exemplar = Exemplar.objects.select_for_update().get(pk=exemplar_id)
        except Exemplar.DoesNotExist:
            raise LearningError("This exemplar does not exist.") from None
        if exemplar.retired_at is not None:
            raise LearningError("This exemplar is already retired.")
        exemplar.retired_at, exemplar.retired_by = timezone.now(), actor
        exemplar.retire_reason = reason
        exemplar.save(update_fields=["retired_at", "retired_by", "retire_reason"])
        record_event(
            action="exemplar.retired",
            actor=actor,
            object_type="exemplar",
            object_id=exemplar.pk,
            after={"category": exemplar.category, "reason": reason},
        )
    return exemplar


def collect_exemplars(decisions: list[Decision]) -> None:
    """An exemplar for every approved or edited reply that has none yet."""
    have = set(
        Exemplar.objects.filter(decision__in=[d.pk for d in decisions]).values_list(
            "decision_id", flat=True
        )
    )
    new = [
        Exemplar(
            decision=d,
            category=d.category,
            ticket_text=TicketView.of(d.task.run.ticket).text,
            draft=str(d.task.proposal.get("draft", "")),
            reply=d.final_text,
            weight=exemplars.EDITED_WEIGHT if d.outcome == DecisionOutcome.EDITED else 1.0,
        )
        for d in decisions
        if d.pk not in have
        and d.outcome in (DecisionOutcome.APPROVED, DecisionOutcome.EDITED)
        and d.final_text
    ]
    Exemplar.objects.bulk_create(new, ignore_conflicts=True)
    if new:
        record_event(
            action="exemplars.collected",
            actor_label=LEARNER,
            object_type="exemplar",
            object_id="",
            after={"count": len(new), "decisions": [e.decision_id for e in new][:1000]},
        )
