"""End to end on the production shape: API → Redis → a Celery worker process → PostgreSQL →
an operator's decision in the browser view → the outbox and the audit trail."""

import pytest
from django.db import transaction
from django.db.models import Count
from rest_framework.test import APIClient

from orchestration.engine.states import RunStatus, StepStatus
from orchestration.models import AuditEvent, HumanTask, Reply, Run, Span, Step, Ticket
from orchestration.services.audit import verify_chain
from orchestration.services.runs import start_run
from orchestration.tasks import execute_step_task
from tests.conftest import client_for
from tests.integration.conftest import wait_until_settled

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TICKETS = [
    {
        "subject": "how do i put my logo on invoices",
        "body": "Hello! Where can I upload our company logo so it shows on the invoice PDF? Thanks",
        "customer_email": "mia@example.com",
        "customer_name": "Mia Jensen",
    },
    {
        "subject": "Someone logged into our account from Brazil",
        "body": "We got a sign-in alert from Sao Paulo at 3am. Nobody here was awake. Lock it now!",
        "customer_email": "ops@example.com",
        "customer_name": "Omar Haddad",
    },
    {
        "subject": "Everything returns 500",
        "body": "The whole app shows error 500 for all 40 of us since 9:00. Payroll is today!!",
        "customer_email": "it@example.com",
        "customer_name": "Lena Vogel",
    },
]


def api(ivan_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {ivan_token}")
    return client


def test_tickets_flow_from_the_api_through_a_worker_to_an_approved_reply(
    autonomous, celery_worker_process, support_desk, ivan_token, alice
):
    client = api(ivan_token)
    run_ids = []
    for ticket in TICKETS:
        response = client.post("/api/v1/tickets", ticket, format="json")
        assert response.status_code == 201, response.content
        run_ids.append(response.json()["run_id"])
    runs = {r.pk: r for r in wait_until_settled(run_ids)}
    assert runs[run_ids[0]].outcome == "auto_sent"
    assert runs[run_ids[1]].status == RunStatus.WAITING_HUMAN
    assert runs[run_ids[2]].status == RunStatus.WAITING_HUMAN

    task = HumanTask.objects.get(run_id=run_ids[1])
    page = client_for(alice).post(
        f"/approvals/{task.pk}/decide/", {"action": "approve", "version": task.version}
    )
    assert page.status_code == 302
    # The decision committed with the run back in "running"; the worker now sends the reply.
    (run,) = wait_until_settled([run_ids[1]])
    assert run.status == RunStatus.SUCCEEDED
    assert run.outcome == "sent"
    reply = Reply.objects.get(run=run)
    assert reply.approved_by == alice
    assert Reply.objects.count() == 2, "one auto-sent, one approved; the outage still waits"

    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "ticket.ingested",
        "task.opened",
        "task.decided",
        "reply.sent",
    } <= actions
    assert AuditEvent.objects.get(action="task.decided").actor == alice
    assert verify_chain().intact

    status = client.get(f"/api/v1/runs/{run_ids[0]}").json()
    assert status["status"] == "succeeded" and status["outcome"] == "auto_sent"


def test_a_message_delivered_twice_does_no_second_work(
    autonomous, celery_worker_process, support_desk
):
    ticket = Ticket.objects.create(
        customer_email="mia@example.com",
        **{k: v for k, v in TICKETS[0].items() if k in ("subject", "body", "customer_name")},
    )
    with transaction.atomic():
        run = start_run(ticket=ticket)
        first_step = run.steps.get(sequence=1)
        # The broker redelivers: the same step's message arrives twice more.
        transaction.on_commit(lambda: execute_step_task.delay(first_step.pk))
        transaction.on_commit(lambda: execute_step_task.delay(first_step.pk))
    (run,) = wait_until_settled([run.pk])
    assert run.status == RunStatus.SUCCEEDED
    first_step.refresh_from_db()
    assert first_step.attempt == 1
    steps = list(Step.objects.filter(run=run))
    assert [s.sequence for s in steps] == [1, 2, 3, 4, 5]
    assert all(s.status == StepStatus.SUCCEEDED and s.attempt == 1 for s in steps)
    assert Span.objects.filter(run=run, kind=Span.Kind.AGENT).count() == 5
    assert Reply.objects.filter(run=run).count() == 1


def test_two_hundred_tickets_all_settle_with_one_worker_and_no_reply_twice(
    autonomous, celery_worker_process, support_desk, ivan_token
):
    from orchestration import dataset

    _, test_split = dataset.split()
    client = api(ivan_token)
    run_ids = []
    for n in range(200):
        source = test_split[n % len(test_split)]
        response = client.post(
            "/api/v1/tickets",
            {
                "subject": source.subject,
                "body": source.body,
                "customer_email": source.customer_email,
                "customer_name": source.customer_name,
                "external_id": f"load-{n}",
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        run_ids.append(response.json()["run_id"])
    runs = wait_until_settled(run_ids, timeout=600)
    statuses = {r.status for r in runs}
    assert statuses <= {RunStatus.SUCCEEDED, RunStatus.WAITING_HUMAN}, statuses
    auto_sent = [r.pk for r in runs if r.outcome == "auto_sent"]
    waiting = [r.pk for r in runs if r.status == RunStatus.WAITING_HUMAN]
    assert auto_sent and waiting, "the mix has both kinds"
    assert len(auto_sent) + len(waiting) == 200
    replies = Reply.objects.filter(run_id__in=run_ids)
    assert sorted(replies.values_list("run_id", flat=True)) == sorted(auto_sent)
    assert not replies.values("run").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert HumanTask.objects.filter(run_id__in=waiting).count() == len(waiting)
    assert Run.objects.filter(pk__in=run_ids).count() == 200
    assert verify_chain().intact
