"""Shared fixtures: the people who use the console, and a support desk ready to run.

Personas: alice is an operator, bob an admin, carol an auditor, dave has no role, and
ivan is an integration account that submits tickets through the API."""

import os

import pytest
from django.contrib.auth.models import Group, User
from django.db.backends.signals import connection_created
from django.dispatch import receiver
from django.test import Client
from rest_framework.authtoken.models import Token

from console import celery_app
from orchestration import dataset
from orchestration.agents.triage_model import TriageModel
from orchestration.models import PolicyVersion
from orchestration.models.taxonomy import Category
from orchestration.services.knowledge import load_resolved_tickets, upsert_articles
from orchestration.services.tickets import NewTicket, ingest_tickets


@receiver(connection_created)
def _allow_wiping_audit_trail(sender, connection, **kwargs):
    # Between transactional tests the database is emptied with TRUNCATE, which the audit
    # trail refuses unless the session says so.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET switchboard.wipe_audit_trail = 'on'")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Each test session gets its own scratch database, so two sessions on one machine
    (a developer's and CI's, say) never drop each other's."""
    from django.conf import settings

    for alias in settings.DATABASES.values():
        alias.setdefault("TEST", {})
        base = alias["TEST"].get("NAME") or f"test_{alias['NAME']}"
        alias["TEST"]["NAME"] = f"{base}_{os.getpid()}"


@pytest.fixture(autouse=True)
def tasks_in_process(request):
    """Unit and service tests run Celery tasks in-process; integration tests use a worker."""
    eager = request.node.get_closest_marker("integration") is None
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = eager
    yield
    celery_app.conf.task_always_eager = previous


def _person(username: str, role: str | None) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-password")
    if role:
        # get_or_create: a transactional test before this one may have flushed the groups.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def alice(db):
    return _person("alice", "operator")


@pytest.fixture
def bob(db):
    return _person("bob", "admin")


@pytest.fixture
def carol(db):
    return _person("carol", "auditor")


@pytest.fixture
def dave(db):
    return _person("dave", None)


@pytest.fixture
def ivan(db):
    return _person("ivan", "integration")


@pytest.fixture
def ivan_token(ivan):
    return Token.objects.create(user=ivan).key


def client_for(user: User, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def triage_artifact() -> bytes:
    """The triage classifier trained once per test session on the shipped training split."""
    train, _ = dataset.split()
    model = TriageModel.train(
        [t.text for t in train], [t.category for t in train], [t.urgency for t in train]
    )
    return model.dumps()


@pytest.fixture(scope="session")
def decider_artifact() -> bytes:
    """The decider's starting estimate, from the cross-fitted replay, once per session."""
    from orchestration.learning.decider_training import starting_model

    return starting_model().dumps()


def _active_version(agent: str, blob: bytes) -> PolicyVersion:
    import hashlib

    return PolicyVersion.objects.create(
        agent=agent,
        version=1,
        artifact=blob,
        artifact_sha256=hashlib.sha256(blob).hexdigest(),
        status=PolicyVersion.Status.ACTIVE,
    )


@pytest.fixture
def support_desk(db, triage_artifact):
    """Articles, resolved history and an active triage model. No decider estimate is trained
    (a person decides every ticket; `trained_decider` adds the starting one)."""
    upsert_articles(rows=dataset.articles())
    train, _ = dataset.split()
    load_resolved_tickets(tickets=train)
    _active_version("triage", triage_artifact)


@pytest.fixture
def trained_decider(support_desk, decider_artifact):
    """The decider's starting estimate, active: what `setup_demo` trains."""
    return _active_version("decider", decider_artifact)


def earn_autonomy(category: str, *, right: int = 80, wrong: int = 0):
    """Give ``category`` the evidence of ``right`` and ``wrong`` would-send recommendations
    and judge it (80 right of 80 earns it at the default 95% target)."""
    from orchestration.engine.autonomy import AutonomyPolicy
    from orchestration.models import AutonomyEvidence
    from orchestration.services.autonomy import reassess_category
    from orchestration.workflows.support_desk import CONFIG

    AutonomyEvidence.objects.bulk_create(
        AutonomyEvidence(
            workflow="support_desk",
            category=category,
            source=AutonomyEvidence.Source.HISTORY,
            right=i < right,
            score=0.95,
            ref=f"evidence {i}",
        )
        for i in range(right + wrong)
    )
    return reassess_category(category=category, policy=AutonomyPolicy.from_config(CONFIG))


@pytest.fixture
def autonomous(trained_decider, monkeypatch):
    """A desk past its shadow mode: every category no hard rule holds has earned autonomy,
    and the decider recommends sending every draft no hard rule holds back (send threshold
    0), so that a test of the engine is not one of the estimate. Reviews after sending are
    off (sample share 0) unless a test turns them on."""
    from orchestration.workflows import support_desk as module

    autonomy = {
        **module.CONFIG["autonomy"],
        "send_threshold": 0.0,
        "sample_share": 0.0,
        "recent_sample_share": 0.0,
    }
    monkeypatch.setattr(module, "CONFIG", {**module.CONFIG, "autonomy": autonomy})
    held = set(module.CONFIG["always_human_categories"])
    for category in Category.values:
        if category not in held:
            earn_autonomy(category)


@pytest.fixture
def eager_decider(trained_decider, monkeypatch):
    """The decider recommends sending every draft no hard rule holds back (send threshold 0),
    so that what is tested is autonomy, not the estimate; every reply sent alone is
    reviewed (sample share 1)."""
    from orchestration.workflows import support_desk

    autonomy = {
        **support_desk.CONFIG["autonomy"],
        "send_threshold": 0.0,
        "sample_share": 1.0,
        "recent_sample_share": 1.0,
    }
    monkeypatch.setattr(support_desk, "CONFIG", {**support_desk.CONFIG, "autonomy": autonomy})


def new_ticket(**overrides) -> NewTicket:
    fields = {
        "subject": "How do I add my logo to invoices?",
        "body": "Hi, I'd like my company logo on the invoices I send. "
        "Where do I upload it? Thanks, Mia",
        "customer_email": "mia@example.com",
        "customer_name": "Mia Jensen",
    }
    fields.update(overrides)
    return NewTicket(**fields)


@pytest.fixture
def run_ticket(support_desk, django_capture_on_commit_callbacks):
    """Ingest one ticket and run its workflow in-process until it finishes or waits."""

    def run(**overrides):
        with django_capture_on_commit_callbacks(execute=True):
            (ticket,) = ingest_tickets(tickets=[new_ticket(**overrides)], actor_label="test")
        return ticket.runs.get()

    return run
