"""Who sees which screen: the role matrix of the console, screen by screen, persona by persona.

The table ``MATRIX`` below is the specification. Each cell says what that persona meets on
that screen; every cell is one test."""

from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import resolve

from orchestration.engine.states import TaskStatus
from orchestration.models import AuditEvent, Decision, HumanTask, Reply
from tests.conftest import client_for
from tests.console.test_learning_screens import (
    VALID_SETTINGS,
    decided,
    exemplar_of,
    learning_desk,
)
from tests.orchestration.test_runs import SECURITY


@dataclass(frozen=True)
class Expect:
    """What a persona meets on a screen."""

    status: int
    # For redirects: where the browser is sent ("{path}" is the requested path).
    location: str = ""
    # For the decide POST: whether a decision ends up recorded.
    decided: bool = False
    # Text the page must show.
    shows: str = ""
    # For the cancel POST: whether the run ends up cancelled.
    cancelled: bool = False
    # For the learning screens' POSTs: whether the change is made (and audited).
    learns: bool = False


SHOWN = Expect(200)
DENIED = Expect(403, shows="Not allowed")
NO_SCREENS = Expect(403, shows="No screens for this account")
LOGIN = Expect(302, location="/login/?next={path}")
# A posted form cannot be replayed after signing in, so a post is sent on to the home page.
LOGIN_HOME = Expect(302, location="/login/?next=/")
ADMIN_LOGIN = Expect(302, location="/django-admin/login/?next={path}")
QUEUE = Expect(302, location="/approvals/")
DECIDES = Expect(302, location="/approvals/", decided=True)
REFUSED = Expect(403, shows="Not allowed", decided=False)
# An approval task is not a paused run: resuming it is refused with a message, nothing changes.
NOT_PAUSED = Expect(302, location="/approvals/{task}/")
# A reply's approval task asks for no tool call: deciding one there is refused with a
# message, nothing changes.
NOT_TOOL = Expect(302, location="/approvals/{task}/")
# A reply's approval task is no review of a reply sent alone: a verdict there is refused.
NOT_REVIEW = Expect(302, location="/approvals/{task}/", decided=False)
CANCELS = Expect(302, location="/runs/{run}/", cancelled=True)
# A waiting run has no failed step: retrying is refused with a message, nothing changes.
NOT_FAILED = Expect(302, location="/runs/{run}/")
# Replay runs the agents again (at a model's cost), so it is for those who act on runs; a run
# still waiting is refused with a message.
NOT_FINISHED = Expect(302, location="/runs/{run}/")

# The learning switches send the admin back to the page that shows what changed.
PROMOTES = Expect(302, location="/learning/versions/{version}/", learns=True)
ROLLS_BACK = Expect(302, location="/learning/versions/{previous}/", learns=True)
REACTIVATES = Expect(302, location="/learning/versions/{previous}/", learns=True)
SAVES = Expect(302, location="/learning/", learns=True)
LEARNS = Expect(302, location="/learning/", learns=True)
RETIRE_FORM = Expect(200, shows="never used again")
RETIRES = Expect(302, location="/learning/exemplars/", learns=True)

PERSONAS = ("anonymous", "alice", "bob", "carol", "dave", "ivan")

# fmt: off
MATRIX: dict[str, tuple[Expect, ...]] = {
    #                anonymous    alice        bob      carol        dave         ivan
    #                             operator     admin    auditor      no role      integration
    "home":         (LOGIN,       QUEUE,       QUEUE,   QUEUE,       NO_SCREENS,  NO_SCREENS),
    "queue":        (LOGIN,       SHOWN,       SHOWN,   SHOWN,       DENIED,      DENIED),
    "task":         (LOGIN,       SHOWN,       SHOWN,   SHOWN,       DENIED,      DENIED),
    "decide":       (LOGIN_HOME,  DECIDES,     DECIDES, REFUSED,     REFUSED,     REFUSED),
    "resume":       (LOGIN_HOME,  NOT_PAUSED,  NOT_PAUSED, REFUSED,  REFUSED,     REFUSED),
    "decide_tool":  (LOGIN_HOME,  NOT_TOOL,    NOT_TOOL, REFUSED,    REFUSED,     REFUSED),
    "review":       (LOGIN_HOME,  NOT_REVIEW,  NOT_REVIEW, REFUSED,  REFUSED,     REFUSED),
    "cancel":       (LOGIN_HOME,  CANCELS,     CANCELS, REFUSED,     REFUSED,     REFUSED),
    "retry":        (LOGIN_HOME,  NOT_FAILED,  NOT_FAILED, REFUSED,  REFUSED,     REFUSED),
    "replay":       (LOGIN_HOME,  NOT_FINISHED, NOT_FINISHED, REFUSED, REFUSED,     REFUSED),
    "runs":         (LOGIN,       SHOWN,       SHOWN,   SHOWN,       DENIED,      DENIED),
    "run":          (LOGIN,       SHOWN,       SHOWN,   SHOWN,       DENIED,      DENIED),
    "audit":        (LOGIN,       DENIED,      SHOWN,   SHOWN,       DENIED,      DENIED),
    "django-admin": (ADMIN_LOGIN, ADMIN_LOGIN, SHOWN,   ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN),
    "learning":     (LOGIN,       DENIED,      SHOWN,   SHOWN,       DENIED,      DENIED),
    "learning_version": (LOGIN,   DENIED,      SHOWN,   SHOWN,       DENIED,      DENIED),
    "learning_exemplars": (LOGIN, DENIED,      SHOWN,   SHOWN,       DENIED,      DENIED),
    "learning_retire_form": (LOGIN, DENIED,    RETIRE_FORM, DENIED,  DENIED,      DENIED),
    "learning_settings": (LOGIN_HOME, DENIED,  SAVES,   DENIED,      DENIED,      DENIED),
    "learning_learn": (LOGIN_HOME, DENIED,     LEARNS,  DENIED,      DENIED,      DENIED),
    "learning_promote": (LOGIN_HOME, DENIED,   PROMOTES, DENIED,     DENIED,      DENIED),
    "learning_roll_back": (LOGIN_HOME, DENIED, ROLLS_BACK, DENIED,   DENIED,      DENIED),
    "learning_reactivate": (LOGIN_HOME, DENIED, REACTIVATES, DENIED, DENIED,      DENIED),
    "learning_retire": (LOGIN_HOME, DENIED,    RETIRES, DENIED,      DENIED,      DENIED),
}
# fmt: on

# Screens that need an open task (and its run) to exist.
NEEDS_TASK = {
    "task",
    "decide",
    "decide_tool",
    "review",
    "resume",
    "cancel",
    "retry",
    "replay",
    "run",
}
# Learning screens that need an exemplar (made from a decided run) to exist.
NEEDS_EXEMPLAR = {"learning_exemplars", "learning_retire_form", "learning_retire"}
# What the learning screens' POSTs send.
LEARNING_POSTS = {
    "learning_settings": VALID_SETTINGS,
    "learning_learn": {},
    "learning_promote": {},
    "learning_roll_back": {},
    "learning_reactivate": {},
    "learning_retire": {"reason": "promises a refund we do not give"},
}


def _learning(request, screen: str) -> dict[str, int]:
    """The learned versions (and an exemplar) the learning screens act on, by id."""
    exemplar = None
    if screen in NEEDS_EXEMPLAR:
        run = request.getfixturevalue("run_ticket")(**SECURITY)
        bob = request.getfixturevalue("bob")
        exemplar = exemplar_of(decided(run, bob))
    desk = learning_desk()
    return {
        "version": desk.passing.pk,
        "active": desk.active.pk,
        "previous": desk.previous.pk,
        "exemplar": exemplar.pk if exemplar else 0,
    }


def _path(screen: str, task: HumanTask | None, learned: dict[str, int] | None = None) -> str:
    ids = learned or {}
    return {
        "home": lambda: "/",
        "queue": lambda: "/approvals/",
        "task": lambda: f"/approvals/{task.pk}/",
        "decide": lambda: f"/approvals/{task.pk}/decide/",
        "resume": lambda: f"/approvals/{task.pk}/resume/",
        "decide_tool": lambda: f"/approvals/{task.pk}/decide-tool/",
        "review": lambda: f"/approvals/{task.pk}/review/",
        "cancel": lambda: f"/runs/{task.run_id}/cancel/",
        "retry": lambda: f"/runs/{task.run_id}/retry/",
        "replay": lambda: f"/runs/{task.run_id}/replay/",
        "runs": lambda: "/runs/",
        "run": lambda: f"/runs/{task.run_id}/",
        "audit": lambda: "/audit/",
        "django-admin": lambda: "/django-admin/",
        "learning": lambda: "/learning/",
        "learning_version": lambda: f"/learning/versions/{ids['version']}/",
        "learning_exemplars": lambda: "/learning/exemplars/",
        "learning_retire_form": lambda: f"/learning/exemplars/{ids['exemplar']}/retire/",
        "learning_settings": lambda: "/learning/settings/",
        "learning_learn": lambda: "/learning/learn/",
        "learning_promote": lambda: f"/learning/versions/{ids['version']}/promote/",
        "learning_roll_back": lambda: f"/learning/versions/{ids['active']}/roll-back/",
        "learning_reactivate": lambda: f"/learning/versions/{ids['previous']}/reactivate/",
        "learning_retire": lambda: f"/learning/exemplars/{ids['exemplar']}/retire/",
    }[screen]()


def _client_as(request, persona: str, **kwargs) -> Client:
    if persona == "anonymous":
        return Client(**kwargs)
    return client_for(request.getfixturevalue(persona), **kwargs)


CASES = [
    pytest.param(screen, persona, expected, id=f"{screen}-{persona}")
    for screen, row in MATRIX.items()
    for persona, expected in zip(PERSONAS, row, strict=True)
]


@pytest.mark.parametrize(("screen", "persona", "expected"), CASES)
def test_each_persona_meets_what_the_role_matrix_says(
    request, db, screen, persona, expected, django_capture_on_commit_callbacks
):
    task = None
    if screen in NEEDS_TASK:
        run = request.getfixturevalue("run_ticket")(**SECURITY)
        task = HumanTask.objects.get(run=run)
    learned = _learning(request, screen) if screen.startswith("learning") else {}
    client = _client_as(request, persona)
    path = _path(screen, task, learned)
    if screen in SCREEN_URL_NAMES:
        assert resolve(path).view_name == SCREEN_URL_NAMES[screen]

    if screen == "decide":
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(path, {"action": "approve", "version": task.version})
    elif screen in ("resume", "retry"):
        response = client.post(path, {"version": task.version})
    elif screen == "decide_tool":
        response = client.post(path, {"action": "approve", "version": task.version})
    elif screen == "review":
        response = client.post(path, {"verdict": "right", "version": task.version})
    elif screen == "cancel":
        response = client.post(path, {"reason": "handled by phone"})
    elif screen == "replay":
        response = client.post(path, {"from_step": 1})
    elif screen in LEARNING_POSTS:
        response = client.post(path, LEARNING_POSTS[screen])
    else:
        response = client.get(path)

    assert response.status_code == expected.status, (
        f"{persona} on {screen} ({path}): got {response.status_code}"
    )
    if expected.location:
        assert response["Location"] == expected.location.format(
            path=path, task=task.pk if task else "", run=task.run_id if task else "", **learned
        )
    if expected.shows:
        assert expected.shows in response.content.decode()
    if task is not None and expected.status != 200:
        # Nobody turned away from a task learns what the customer wrote.
        assert SECURITY["subject"] not in response.content.decode()
    if screen in NEEDS_EXEMPLAR and expected.status != 200:
        # Nobody turned away from the exemplars reads what a customer wrote.
        assert SECURITY["subject"] not in response.content.decode()
    if screen in LEARNING_POSTS:
        changed = AuditEvent.objects.filter(action__regex=r"^(policy|learning|exemplar)\.")
        assert changed.exists() is expected.learns
    if screen in ("resume", "cancel", "retry", "replay"):
        task.run.refresh_from_db()
        assert (task.run.status == "cancelled") == expected.cancelled
        assert not Reply.objects.exists()
    if screen in ("decide", "decide_tool", "review"):
        task.refresh_from_db()
        if expected.decided:
            assert task.status == TaskStatus.DECIDED
            assert Decision.objects.get(task=task).actor.username == persona
            assert Reply.objects.filter(run=task.run_id).count() == 1
        else:
            assert task.status == TaskStatus.OPEN
            assert not Decision.objects.exists()
            assert not Reply.objects.exists()


# The console's own address for each screen of the matrix (django-admin is Django's).
SCREEN_URL_NAMES = {
    "home": "home",
    "queue": "approvals:inbox",
    "task": "approvals:task",
    "decide": "approvals:decide",
    "resume": "approvals:resume",
    "decide_tool": "approvals:decide_tool",
    "review": "approvals:review",
    "cancel": "runs:cancel",
    "replay": "runs:replay",
    "retry": "runs:retry",
    "runs": "runs:list",
    "run": "runs:detail",
    "audit": "audit",
    "learning": "learning:overview",
    "learning_version": "learning:version",
    "learning_exemplars": "learning:exemplars",
    "learning_retire_form": "learning:retire",
    "learning_settings": "learning:settings",
    "learning_learn": "learning:learn",
    "learning_promote": "learning:promote",
    "learning_roll_back": "learning:roll_back",
    "learning_reactivate": "learning:reactivate",
    "learning_retire": "learning:retire",
}


def test_every_console_screen_has_a_row_in_the_matrix():
    # A screen added to the console without a row here would go unchecked.
    from django.urls import URLResolver

    from console.urls import urlpatterns

    names = set()
    for pattern in urlpatterns:
        if isinstance(pattern, URLResolver):
            # The tool and grant screens have role matrices of their own
            # (test_tool_screens.py, test_grant_screens.py), each checked the same way.
            if pattern.namespace in ("api", "admin", "tools", "grants"):
                continue
            names |= {f"{pattern.namespace}:{p.name}" for p in pattern.url_patterns}
        elif pattern.name not in ("login", "logout"):
            names.add(pattern.name)
    assert names == set(SCREEN_URL_NAMES.values())
    assert set(MATRIX) == set(SCREEN_URL_NAMES) | {"django-admin"}


@pytest.mark.parametrize(
    ("persona", "links", "hidden"),
    [
        ("alice", ["/approvals/", "/runs/"], ["/audit/", "/learning/", "/django-admin/"]),
        ("bob", ["/approvals/", "/runs/", "/audit/", "/learning/", "/django-admin/"], []),
        ("carol", ["/approvals/", "/runs/", "/audit/", "/learning/"], ["/django-admin/"]),
    ],
)
def test_the_navigation_offers_only_the_screens_the_role_may_open(
    request, db, persona, links, hidden
):
    response = _client_as(request, persona).get("/runs/")
    nav = response.content.decode().split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    for link in links:
        assert f'href="{link}"' in nav
    for link in hidden:
        assert f'href="{link}"' not in nav


def test_an_auditor_reads_a_task_without_a_form_to_decide_it(run_ticket, carol):
    task = HumanTask.objects.get(run=run_ticket(**SECURITY))
    page = client_for(carol).get(f"/approvals/{task.pk}/").content.decode()
    assert task.proposal["draft"].splitlines()[0] in page
    assert "<textarea" not in page
    assert f'action="/approvals/{task.pk}/decide/"' not in page
    assert "Your role can read this task but not decide it." in page


def test_a_deactivated_operator_is_turned_away(db, alice):
    client = client_for(alice)
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    response = client.get("/approvals/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/approvals/"


def test_signing_in_returns_to_the_filtered_queue_that_was_asked_for(db, alice):
    browser = Client()
    response = browser.get("/approvals/?category=security&urgency=high")
    assert response.status_code == 302
    signed_in = browser.post(
        response["Location"],
        {"username": "alice", "password": "alice-password", "next": _next_of(response["Location"])},
    )
    assert signed_in["Location"] == "/approvals/?category=security&urgency=high"


def test_the_admin_role_alone_opens_django_admin(db):
    from django.contrib.auth.models import Group, User

    admin = User.objects.create_user("erin", password="erin-password")
    admin.groups.add(Group.objects.get_or_create(name="admin")[0])
    admin_client = client_for(admin)
    assert admin_client.get("/django-admin/").status_code == 200
    assert admin_client.get("/django-admin/orchestration/run/").status_code == 200


# Pages the console serves, as one persona who may see them all.
CSP_PAGES = ["/login/", "/approvals/", "/runs/", "/audit/", "/no-such-page/"]


def _csp(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize("path", CSP_PAGES)
def test_every_page_carries_a_policy_that_forbids_inline_scripts(db, bob, path):
    client = Client() if path == "/login/" else client_for(bob)
    response = client.get(path)
    assert response.status_code in (200, 404)
    policy = _csp(response)
    assert policy, f"{path} has no Content-Security-Policy header"
    script_src = policy.get("script-src", policy.get("default-src"))
    assert script_src is not None
    assert "'unsafe-inline'" not in script_src
    assert "'unsafe-eval'" not in script_src
    assert "'self'" in script_src
    assert policy.get("object-src") == ["'none'"]


@pytest.mark.parametrize("screen", ["task", "run"])
def test_task_and_run_pages_carry_the_policy_and_no_inline_script(run_ticket, bob, screen):
    task = HumanTask.objects.get(run=run_ticket(**SECURITY))
    response = client_for(bob).get(_path(screen, task))
    assert response.status_code == 200
    assert "'unsafe-inline'" not in _csp(response)["script-src"]
    # The policy would block an inline script, so the page must not rely on one.
    html = response.content.decode()
    for chunk in html.split("<script")[1:]:
        tag = chunk.split(">", 1)[0]
        assert "src=" in tag, f"inline <script> on {screen} page"
    assert " onclick=" not in html and " onload=" not in html


def test_a_signed_out_operator_who_posts_a_decision_lands_on_a_page_after_signing_in(
    run_ticket, alice
):
    task = HumanTask.objects.get(run=run_ticket(**SECURITY))
    browser = Client()
    response = browser.post(
        f"/approvals/{task.pk}/decide/", {"action": "approve", "version": task.version}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert not Decision.objects.exists()
    # Signing in through the form sends the operator on to a page they can use.
    signed_in = browser.post(
        response["Location"],
        {"username": "alice", "password": "alice-password", "next": _next_of(response["Location"])},
        follow=True,
    )
    assert signed_in.status_code == 200
    assert not Decision.objects.exists(), "signing in never replays the decision"


def _next_of(location: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(location).query).get("next", [""])[0]
