from orchestration.models.audit import AuditChainHead, AuditEvent
from orchestration.models.autonomy import AutonomyEvidence, CategoryAutonomy
from orchestration.models.human import Decision, HumanTask
from orchestration.models.learning import (
    Exemplar,
    LearningCycle,
    LearningSettings,
    PolicyVersion,
)
from orchestration.models.runs import Run, Step
from orchestration.models.support import KnowledgeArticle, Refund, Reply, Ticket
from orchestration.models.tracing import Span
from orchestration.models.workflows import Workflow

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "AutonomyEvidence",
    "CategoryAutonomy",
    "Decision",
    "Exemplar",
    "HumanTask",
    "KnowledgeArticle",
    "LearningCycle",
    "LearningSettings",
    "PolicyVersion",
    "Refund",
    "Reply",
    "Run",
    "Span",
    "Step",
    "Ticket",
    "Workflow",
]
