"""The approval queue and the task page, as an operator uses them through the browser."""

import datetime
import html
import re
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from orchestration import dataset
from orchestration.engine.states import DecisionOutcome, RunStatus, TaskStatus
from orchestration.models import AuditEvent, Decision, HumanTask, Reply
from tests.conftest import client_for
from tests.orchestration.test_runs import HOW_TO, SECURITY

# ---------------------------------------------------------------------------------------------
# Reading pages


class _Tables(HTMLParser):
    """Rows of the <tbody> of every table with the given class: each row a list of cell texts,
    plus the hrefs found in the row."""

    def __init__(self, table_class: str) -> None:
        super().__init__()
        self.table_class = table_class
        self.depth = 0  # >0 while inside the wanted table
        self.in_body = False
        self.rows: list[dict] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            if self.depth:
                self.depth += 1
            elif self.table_class in (attrs.get("class") or "").split():
                self.depth = 1
        if not self.depth:
            return
        if tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append({"cells": [], "links": []})
        elif tag in ("td", "th") and self.in_body and self.rows:
            self.cell = []
        elif tag == "a" and self.in_body and self.rows:
            self.rows[-1]["links"].append(attrs.get("href"))

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1]["cells"].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.depth -= 1

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def table_rows(page: str, table_class: str) -> list[dict]:
    parser = _Tables(table_class)
    parser.feed(page)
    return parser.rows


def textarea(page: str, name: str) -> str | None:
    """The text inside <textarea name=...>, unescaped as the browser would show it."""
    match = re.search(rf'<textarea[^>]*name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
    return html.unescape(match.group(1)) if match else None


def messages_on(page: str) -> list[str]:
    return [
        html.unescape(m) for m in re.findall(r'<li class="message[^"]*">(.*?)</li>', page, re.S)
    ]


def csrf_token_in(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


# ---------------------------------------------------------------------------------------------
# Tickets whose classification is known: shipped training tickets the classifier was trained
# on, so the trained model classifies them as labelled.

LABELLED = {t.subject: t for t in dataset.labelled_tickets()}


def shipped(subject: str) -> dict[str, str]:
    ticket = LABELLED[subject]
    return {
        "subject": ticket.subject,
        "body": ticket.body,
        "customer_name": ticket.customer_name,
        "customer_email": ticket.customer_email,
    }


SECURITY_CRITICAL = "SIM swap – they're getting my SMS codes"
OUTAGE_HIGH = "Status page says green. It is not green."
REFUND_NORMAL = "Trial turned into paid - I forgot"
SECURITY_NORMAL = "Login alert from Warsaw but I'm in Kraków"


@pytest.fixture
def open_task(run_ticket):
    """Open a task for the ticket with this subject; check it was classified as expected."""

    def make(subject: str, category: str, urgency: str) -> HumanTask:
        task = HumanTask.objects.get(run=run_ticket(**shipped(subject)))
        assert (task.category, task.urgency) == (category, urgency), (
            f"precondition: {subject!r} should be classified {category}/{urgency}"
        )
        return task

    return make


def age(task: HumanTask, **delta) -> HumanTask:
    """Make the task look as if it had been waiting this long."""
    HumanTask.objects.filter(pk=task.pk).update(
        created_at=timezone.now() - datetime.timedelta(**delta)
    )
    task.refresh_from_db()
    return task


@pytest.fixture
def waiting_task(run_ticket):
    return HumanTask.objects.get(run=run_ticket(**SECURITY))


def post_decision(client, task, captured, **fields):
    data = {"version": task.version, **fields}
    with captured(execute=True):
        return client.post(f"/approvals/{task.pk}/decide/", data)


# ---------------------------------------------------------------------------------------------
# The queue


@pytest.fixture
def mixed_queue(autonomous, open_task, run_ticket):
    """Four open tasks made in an order that is not the queue order, one auto-sent ticket and
    one already decided task."""
    refund = age(open_task(REFUND_NORMAL, "refund", "normal"), hours=2)
    outage = age(open_task(OUTAGE_HIGH, "outage", "high"), minutes=5)
    security = age(open_task(SECURITY_CRITICAL, "security", "critical"), minutes=1)
    # Made last but waiting longest of the two normal ones: it comes before the refund.
    login = age(open_task(SECURITY_NORMAL, "security", "normal"), hours=3)
    auto_sent = run_ticket(**HOW_TO)
    auto_sent.refresh_from_db()
    assert auto_sent.status == RunStatus.SUCCEEDED
    return {"refund": refund, "outage": outage, "security": security, "login": login}


def queue_links(page: str) -> list[str]:
    """The task pages the queue links to, without the filters each link carries along."""
    return [row["links"][0].split("?")[0] for row in table_rows(page, "queue")]


def test_the_queue_lists_open_tasks_most_urgent_first_then_longest_waiting(
    mixed_queue, alice, django_capture_on_commit_callbacks
):
    client = client_for(alice)
    page = client.get("/approvals/").content.decode()
    expected = [mixed_queue[k] for k in ("security", "outage", "login", "refund")]
    assert queue_links(page) == [f"/approvals/{t.pk}/" for t in expected]
    assert "4 open tasks, most urgent first." in page
    assert HOW_TO["subject"] not in page, "an auto-sent ticket never waits in the queue"

    post_decision(
        client, mixed_queue["outage"], django_capture_on_commit_callbacks, action="approve"
    )
    page = client.get("/approvals/").content.decode()
    assert f"/approvals/{mixed_queue['outage'].pk}/" not in queue_links(page)
    assert len(queue_links(page)) == 3


def test_each_queue_row_shows_urgency_ticket_category_confidence_and_age(open_task, alice):
    task = age(open_task(REFUND_NORMAL, "refund", "normal"), hours=3, minutes=10)
    (row,) = table_rows(client_for(alice).get("/approvals/").content.decode(), "queue")
    urgency, ticket, category, confidence, why, waiting = row["cells"]
    assert urgency == "normal"
    assert ticket.startswith(REFUND_NORMAL)
    assert LABELLED[REFUND_NORMAL].customer_name in ticket
    assert category == "refund"
    assert confidence == f"{task.confidence * 100:.0f}%"
    assert "refund tickets always go to a person" in why
    assert waiting == "3 hours, 10 minutes"


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ("category=security", {"security", "login"}),
        ("category=outage", {"outage"}),
        ("category=billing", set()),
        ("urgency=normal", {"refund", "login"}),
        ("urgency=critical", {"security"}),
        ("category=security&urgency=normal", {"login"}),
    ],
)
def test_the_queue_filters_by_category_and_urgency(mixed_queue, alice, query, shown):
    page = client_for(alice).get(f"/approvals/?{query}").content.decode()
    assert set(queue_links(page)) == {f"/approvals/{mixed_queue[k].pk}/" for k in shown}
    # Each task keeps the queue's filters, so "next task" and the way back stay within them.
    assert all(row["links"][0].endswith(f"?{query}") for row in table_rows(page, "queue"))
    if not shown:
        assert "Nothing is waiting for a person with these filters." in page


def test_the_filter_form_keeps_the_chosen_values(mixed_queue, alice):
    page = client_for(alice).get("/approvals/?category=security&urgency=normal").content.decode()
    assert '<option value="security" selected>' in page
    assert '<option value="normal" selected>' in page


@pytest.mark.parametrize(
    "query",
    [
        "urgency=bogus",
        "category=%3Cscript%3Ealert(1)%3C/script%3E",
        "page=abc",
        "page=999",
        "category=&urgency=",
    ],
)
def test_an_invalid_filter_value_still_shows_the_queue(mixed_queue, alice, query):
    response = client_for(alice).get(f"/approvals/?{query}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page
    assert queue_links(page), "the open tasks are still listed"


def test_an_htmx_request_gets_only_the_queue_fragment(mixed_queue, alice):
    response = client_for(alice).get(
        "/approvals/?category=security", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    fragment = response.content.decode().strip()
    assert fragment.startswith('<section id="queue"')
    assert fragment.endswith("</section>")
    assert "<html" not in fragment and "<nav" not in fragment
    assert set(queue_links(fragment)) == {
        f"/approvals/{mixed_queue[k].pk}/" for k in ("security", "login")
    }


def test_a_boosted_htmx_request_gets_the_whole_page(mixed_queue, alice):
    response = client_for(alice).get(
        "/approvals/", headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    assert "<html" in response.content.decode()


def test_an_empty_queue_says_nothing_is_waiting(support_desk, alice):
    page = client_for(alice).get("/approvals/").content.decode()
    assert "0 open tasks" in page
    assert "Nothing is waiting for a person." in page


# ---------------------------------------------------------------------------------------------
# The task page


def test_the_task_page_shows_ticket_classification_articles_and_the_draft(waiting_task, alice):
    page = client_for(alice).get(f"/approvals/{waiting_task.pk}/").content.decode()
    text = html.unescape(page)
    ticket = waiting_task.run.ticket
    proposal = waiting_task.proposal
    assert ticket.subject in text
    assert ticket.body in text
    assert ticket.customer_email in text
    assert "security" in text
    assert f"{proposal['category_confidence'] * 100:.0f}%" in text
    assert f"{proposal['urgency_confidence'] * 100:.0f}%" in text
    assert "security tickets always go to a person" in text
    assert proposal["articles"], "precondition: research found articles"
    for article in proposal["articles"]:
        assert article["title"] in text
        assert article["slug"] in text
    assert textarea(page, "final_text") == proposal["draft"]
    assert f'name="version" value="{waiting_task.version}"' in page


def test_the_task_page_of_an_unknown_task_is_not_found(support_desk, alice):
    response = client_for(alice).get("/approvals/999999/")
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


HOSTILE = {
    "subject": "Hacked <script>alert(1)</script> account",
    "body": SECURITY["body"] + '\n<img src=x onerror="alert(2)"> <script>alert(3)</script>',
    "customer_name": "<img src=y onerror=alert(4)>",
}


def test_customer_text_is_shown_escaped_never_as_markup(run_ticket, alice, carol):
    run = run_ticket(**HOSTILE)
    task = HumanTask.objects.get(run=run)
    pages = {
        "queue": client_for(alice).get("/approvals/").content.decode(),
        "task": client_for(alice).get(f"/approvals/{task.pk}/").content.decode(),
        "task (read only)": client_for(carol).get(f"/approvals/{task.pk}/").content.decode(),
        "run": client_for(alice).get(f"/runs/{run.pk}/").content.decode(),
        "runs": client_for(alice).get("/runs/").content.decode(),
    }
    for name, page in pages.items():
        assert "<script>alert" not in page, name
        assert "<img src=x" not in page and "<img src=y" not in page, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, name
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in pages["task"]
    assert "&lt;img src=y onerror=alert(4)&gt;" in pages["task"]


# ---------------------------------------------------------------------------------------------
# Deciding through the task page


def test_approving_sends_the_draft_once_and_returns_to_the_queue(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    client = client_for(alice)
    response = post_decision(
        client,
        waiting_task,
        django_capture_on_commit_callbacks,
        action="approve",
        final_text=waiting_task.proposal["draft"],
    )
    assert response.status_code == 302
    assert response["Location"] == "/approvals/"
    reply = Reply.objects.get(run=waiting_task.run)
    assert reply.body == waiting_task.proposal["draft"]
    assert reply.approved_by == alice
    assert Decision.objects.get(task=waiting_task).outcome == DecisionOutcome.APPROVED
    assert f"Task {waiting_task.pk}: approved." in messages_on(
        client.get("/approvals/").content.decode()
    )

    # The same form submitted again (a double click, a reload) sends nothing more.
    again = post_decision(
        client, waiting_task, django_capture_on_commit_callbacks, action="approve"
    )
    assert again.status_code == 409
    assert Reply.objects.filter(run=waiting_task.run).count() == 1
    assert Decision.objects.count() == 1


def test_approving_sends_the_agents_draft_even_if_the_textarea_was_changed(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="approve",
        final_text="something else entirely",
    )
    assert Reply.objects.get(run=waiting_task.run).body == waiting_task.proposal["draft"]


def test_approving_with_edits_sends_the_edited_text(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    edited = (
        waiting_task.proposal["draft"].replace("\n", "\r\n")
        + "\r\nWe have locked your account as a precaution."
    )
    response = post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="edit",
        final_text=edited,
    )
    assert response.status_code == 302
    reply = Reply.objects.get(run=waiting_task.run)
    assert reply.body == edited.replace("\r\n", "\n").strip()
    assert reply.body.endswith("We have locked your account as a precaution.")
    decision = Decision.objects.get(task=waiting_task)
    assert decision.outcome == DecisionOutcome.EDITED
    assert decision.actor == alice


def test_rejecting_without_a_reason_keeps_what_the_operator_typed(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    typed = "Dear customer & team,\r\nwe are on it <right now>.\r\n\r\n-- Alice"
    response = post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="reject",
        final_text=typed,
        reason="   ",
    )
    assert response.status_code == 400
    page = response.content.decode()
    # The error stands beside the reason field, which takes the focus.
    assert '<p class="field-error" id="reason_error">A rejection needs a reason.</p>' in page
    assert re.search(r'<textarea id="reason"[^>]*autofocus[^>]*aria-invalid="true"', page)
    assert textarea(page, "final_text").replace("\r\n", "\n") == typed.replace("\r\n", "\n")
    assert "we are on it &lt;right now&gt;." in page
    assert not Decision.objects.exists()
    assert not Reply.objects.exists()
    waiting_task.refresh_from_db()
    assert waiting_task.status == TaskStatus.OPEN


def test_an_incomplete_form_is_refused_and_keeps_the_text(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(
            f"/approvals/{waiting_task.pk}/decide/",
            {"action": "send-it-anyway", "final_text": "my careful edit"},
        )
    assert response.status_code == 400
    page = response.content.decode()
    assert "The decision form was incomplete; nothing was recorded." in messages_on(page)
    assert textarea(page, "final_text") == "my careful edit"
    assert not Decision.objects.exists()


def test_rejecting_with_a_reason_sends_nothing(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    response = post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="Escalated to the security team by phone",
    )
    assert response.status_code == 302
    assert not Reply.objects.exists()
    decision = Decision.objects.get(task=waiting_task)
    assert decision.outcome == DecisionOutcome.REJECTED
    assert decision.reason == "Escalated to the security team by phone"
    run = waiting_task.run
    run.refresh_from_db()
    assert (run.status, run.outcome) == (RunStatus.SUCCEEDED, "rejected")


def test_a_second_operator_is_told_who_decided_first(
    waiting_task, alice, bob, django_capture_on_commit_callbacks
):
    version = waiting_task.version  # both opened the task at the same version
    post_decision(
        client_for(alice), waiting_task, django_capture_on_commit_callbacks, action="approve"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(bob).post(
            f"/approvals/{waiting_task.pk}/decide/",
            {
                "action": "reject",
                "reason": "not convinced",
                "version": version,
                "final_text": "bob's text",
            },
        )
    assert response.status_code == 409
    page = response.content.decode()
    (message,) = messages_on(page)
    assert message.startswith("alice already approved this task")
    assert "your decision was not recorded" in message
    assert "<h2>Decided</h2>" in page
    assert Decision.objects.get().actor == alice
    assert Reply.objects.count() == 1


def test_a_form_from_a_stale_version_is_refused_and_keeps_the_text(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    stale = waiting_task.version
    HumanTask.objects.filter(pk=waiting_task.pk).update(version=stale + 1)
    response = post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="edit",
        final_text="my edit",
    )
    assert response.status_code == 409
    page = response.content.decode()
    assert "This task changed since you opened it; reload to see it." in messages_on(page)
    assert textarea(page, "final_text") == "my edit"
    assert f'name="version" value="{stale + 1}"' in page
    assert not Decision.objects.exists()
    assert not Reply.objects.exists()


def test_then_next_opens_the_next_most_urgent_open_task(
    open_task, alice, django_capture_on_commit_callbacks
):
    normal = open_task(REFUND_NORMAL, "refund", "normal")
    critical = open_task(SECURITY_CRITICAL, "security", "critical")
    high = open_task(OUTAGE_HIGH, "outage", "high")
    client = client_for(alice)
    response = post_decision(
        client, normal, django_capture_on_commit_callbacks, action="approve", then="next"
    )
    assert response["Location"] == f"/approvals/{critical.pk}/"
    response = post_decision(
        client,
        critical,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="phoned the customer",
        then="next",
    )
    assert response["Location"] == f"/approvals/{high.pk}/"
    response = post_decision(
        client, high, django_capture_on_commit_callbacks, action="approve", then="next"
    )
    assert response["Location"] == "/approvals/", "with nothing left, back to the queue"


def test_without_then_next_the_operator_returns_to_the_queue(
    open_task, alice, django_capture_on_commit_callbacks
):
    first = open_task(REFUND_NORMAL, "refund", "normal")
    open_task(OUTAGE_HIGH, "outage", "high")
    response = post_decision(
        client_for(alice), first, django_capture_on_commit_callbacks, action="approve"
    )
    assert response["Location"] == "/approvals/"


def test_a_decision_without_the_csrf_token_is_refused(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    client = client_for(alice, enforce_csrf_checks=True)
    response = post_decision(
        client, waiting_task, django_capture_on_commit_callbacks, action="approve"
    )
    assert response.status_code == 403
    assert not Decision.objects.exists()
    assert not Reply.objects.exists()

    token = csrf_token_in(client.get(f"/approvals/{waiting_task.pk}/").content.decode())
    response = post_decision(
        client,
        waiting_task,
        django_capture_on_commit_callbacks,
        action="approve",
        csrfmiddlewaretoken=token,
    )
    assert response.status_code == 302
    assert Decision.objects.get(task=waiting_task).actor == alice
    assert Reply.objects.count() == 1


def test_the_decide_address_only_takes_posts(waiting_task, alice):
    response = client_for(alice).get(f"/approvals/{waiting_task.pk}/decide/")
    assert response.status_code == 405
    assert not Decision.objects.exists()


def test_deciding_an_unknown_task_is_not_found(support_desk, alice):
    response = client_for(alice).post(
        "/approvals/999999/decide/", {"action": "approve", "version": 1}
    )
    assert response.status_code == 404


def test_the_decision_is_recorded_for_the_signed_in_operator_not_a_posted_name(
    waiting_task, alice, bob, django_capture_on_commit_callbacks
):
    post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="approve",
        actor=bob.pk,
        decided_by="bob",
        user=bob.pk,
    )
    assert Decision.objects.get().actor == alice
    event = AuditEvent.objects.get(action="task.decided")
    assert event.actor == alice


def test_a_decided_task_page_shows_who_decided_and_no_form(
    waiting_task, alice, carol, django_capture_on_commit_callbacks
):
    post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="Customer called; handled by phone",
    )
    page = client_for(carol).get(f"/approvals/{waiting_task.pk}/").content.decode()
    assert "<strong>alice</strong> rejected this" in page
    assert "Reason: Customer called; handled by phone" in page
    assert "<textarea" not in page


def test_a_valid_filter_still_applies_when_the_other_one_is_invalid(mixed_queue, alice):
    # The form shows "Security" selected; the list must match what the form says.
    page = client_for(alice).get("/approvals/?category=security&urgency=bogus").content.decode()
    assert '<option value="security" selected>' in page
    assert set(queue_links(page)) == {
        f"/approvals/{mixed_queue[k].pk}/" for k in ("security", "login")
    }


def test_a_second_operators_typed_text_is_not_lost_when_someone_decided_first(
    waiting_task, alice, bob, django_capture_on_commit_callbacks
):
    version = waiting_task.version
    post_decision(
        client_for(alice), waiting_task, django_capture_on_commit_callbacks, action="approve"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(bob).post(
            f"/approvals/{waiting_task.pk}/decide/",
            {"action": "edit", "version": version, "final_text": "Bob's careful rewrite & more"},
        )
    assert response.status_code == 409
    assert "Bob&#x27;s careful rewrite &amp; more" in response.content.decode()


def test_a_typed_rejection_reason_is_not_lost_when_the_task_changed(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    HumanTask.objects.filter(pk=waiting_task.pk).update(version=waiting_task.version + 1)
    response = post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="reject",
        reason="Duplicate of an earlier ticket <#123>",
    )
    assert response.status_code == 409
    assert textarea(response.content.decode(), "reason") == "Duplicate of an earlier ticket <#123>"


def test_then_next_stays_within_the_queue_filters(
    open_task, alice, django_capture_on_commit_callbacks
):
    first_refund = open_task(REFUND_NORMAL, "refund", "normal")
    open_task(SECURITY_CRITICAL, "security", "critical")  # more urgent, but filtered out
    client = client_for(alice)
    page = client.get(f"/approvals/{first_refund.pk}/?category=refund").content.decode()
    assert 'name="queue" value="category=refund"' in page
    response = post_decision(
        client,
        first_refund,
        django_capture_on_commit_callbacks,
        action="edit",
        final_text=first_refund.proposal["draft"],
        then="next",
        queue="category=refund",
    )
    assert response["Location"] == "/approvals/?category=refund", "no refund left: the queue"


def test_an_unticked_then_next_stays_unticked_after_an_error(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    response = post_decision(
        client_for(alice), waiting_task, django_capture_on_commit_callbacks, action="reject"
    )
    assert response.status_code == 400
    assert re.search(
        r'<input type="checkbox" name="then" value="next"\s*>', response.content.decode()
    )


def test_the_single_send_button_approves_an_untouched_draft_and_keeps_edits(
    waiting_task, alice, django_capture_on_commit_callbacks
):
    page = client_for(alice).get(f"/approvals/{waiting_task.pk}/").content.decode()
    assert 'value="approve"' not in page, "no button sends the draft while ignoring the box"
    assert re.search(r'<textarea id="reason"[^>]*required', page)
    post_decision(
        client_for(alice),
        waiting_task,
        django_capture_on_commit_callbacks,
        action="edit",
        final_text=waiting_task.proposal["draft"],
    )
    assert Decision.objects.get().outcome == DecisionOutcome.APPROVED


def test_queue_pages_are_not_cached_and_vary_on_htmx(alice):
    response = client_for(alice).get("/approvals/")
    assert "HX-Request" in response["Vary"]
    assert "no-store" in response["Cache-Control"]
