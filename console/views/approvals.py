"""The approval queue and the task page."""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from console.access import Capability, access_task, require
from console.views.task_page import (
    decided_context,
    feedback_choices,
    review_choices,
    tool_call_expiry,
)
from orchestration.engine.states import TaskKind, TaskStatus
from orchestration.models import HumanTask
from orchestration.models.taxonomy import Category, Urgency
from orchestration.services.controls import RunControlError, resume_run
from orchestration.services.decisions import DecisionError, TaskConflict, decide_task
from tools_registry.approvals import decide_tool_approval
from tools_registry.health import troubled_tools

PAGE_SIZE = 50


class QueueFilter(forms.Form):
    category = forms.ChoiceField(
        choices=[("", "All categories"), *Category.choices], required=False
    )
    urgency = forms.ChoiceField(choices=[("", "All urgencies"), *Urgency.choices], required=False)


# What Enter on a chip or a checkbox posts (the form's first button): nothing is decided.
HOLD = "hold"


class DecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a) for a in ("approve", "edit", "reject", "escalate")])
    final_text = forms.CharField(required=False, strip=False)
    # The note: required to reject or escalate (decide_task says so, beside the field).
    reason = forms.CharField(required=False, max_length=2000)
    version = forms.IntegerField(min_value=1)
    # The feedback. decide_task checks it too; here a tampered value is named beside its field.
    reason_codes = forms.MultipleChoiceField(
        choices=lambda: list(settings.FEEDBACK_REASON_CODES.items()),
        required=False,
        error_messages={"invalid_choice": "Unknown reason code %(value)r."},
    )
    corrected_category = forms.ChoiceField(
        choices=Category.choices,
        required=False,
        error_messages={"invalid_choice": "Unknown category %(value)r."},
    )
    corrected_urgency = forms.ChoiceField(
        choices=Urgency.choices,
        required=False,
        error_messages={"invalid_choice": "Unknown urgency %(value)r."},
    )


# The decision form's fields that show their own error; any other error is "incomplete".
FIELDS_WITH_ERRORS_SHOWN = (
    "final_text",
    "reason",
    "reason_codes",
    "corrected_category",
    "corrected_urgency",
)


class ToolDecisionForm(forms.Form):
    action = forms.ChoiceField(choices=[("approve", "approve"), ("reject", "reject")])
    reason = forms.CharField(required=False, max_length=2000)
    version = forms.IntegerField(min_value=1)


def open_tasks(params: QueryDict) -> tuple[QueueFilter, QuerySet[HumanTask]]:
    """The open tasks the queue shows for these filters, most urgent and then oldest first.

    An invalid value is dropped and shown as "All"; the valid filters still apply, so the list
    always matches what the filter form shows."""
    filters = QueueFilter(params)
    filters.is_valid()
    chosen = filters.cleaned_data
    tasks = (
        HumanTask.objects.filter(status=TaskStatus.OPEN)
        .select_related("run__ticket")
        .order_by("-urgency_rank", "created_at", "id")
    )
    if chosen.get("category"):
        tasks = tasks.filter(category=chosen["category"])
    if chosen.get("urgency"):
        tasks = tasks.filter(urgency=chosen["urgency"])
    return filters, tasks


def _queue_filters(params: QueryDict) -> str:
    """The queue's valid filters as a query string, carried from the queue to a task and back."""
    filters, _ = open_tasks(params)
    return urlencode({k: v for k, v in filters.cleaned_data.items() if v})


@require_GET
@require(Capability.VIEW_QUEUE)
@vary_on_headers("HX-Request")
@never_cache
def inbox(request: HttpRequest) -> HttpResponse:
    filters, tasks = open_tasks(request.GET)
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "filters": filters,
        "page": page,
        "query": _queue_filters(request.GET),
        # The live refresh re-fetches exactly this page of exactly these filters.
        "refresh_url": request.get_full_path(),
    }
    template = "console/approvals/inbox.html"
    if request.htmx and not request.htmx.boosted:
        template += "#queue"
    return render(request, template, context)


@require_GET
@require(Capability.VIEW_QUEUE)
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = access_task(request.user, task_id)
    return _render_task(
        request,
        task,
        DecisionForm(initial={"version": task.version}),
        queue=_queue_filters(request.GET),
    )


def _render_task(
    request: HttpRequest,
    task: HumanTask,
    form: forms.Form,
    status: int = 200,
    draft: str | None = None,
    error: DecisionError | None = None,
    queue: str = "",
) -> HttpResponse:
    context = {
        "task": task,
        "ticket": task.run.ticket,
        "proposal": task.proposal,
        "form": form,
        "queue_query": queue,
        # Ticked unless the operator unticked it on the form they just posted.
        "then_next": request.method != "POST" or request.POST.get("then") == "next",
        "error_field": error.field if error else "",
        "error_message": str(error) if error else "",
        "draft_text": task.proposal.get("draft", "") if draft is None else draft,
        **decided_context(task),
        **(feedback_choices(task, form) if task.kind == TaskKind.APPROVAL else {}),
        **(review_choices(task, form) if task.kind == TaskKind.REVIEW else {}),
        # A paused run may be waiting on a failing tool: the operator sees its breaker.
        "troubled_tools": troubled_tools() if task.kind == TaskKind.EXCEPTION else [],
        **tool_call_expiry(task),
        # Someone else decided first: what this operator typed is still shown to them.
        "unsent_text": draft
        if task.status != TaskStatus.OPEN
        and draft
        and draft.replace("\r\n", "\n").strip() != task.proposal.get("draft", "").strip()
        else None,
    }
    return render(request, "console/approvals/task.html", context, status=status)


def _refuse_tool_approval(request: HttpRequest, task: HumanTask) -> HttpResponse | None:
    """A tool-approval task is decided only by approving or rejecting its call: a reply
    decision or a resume posted for it is turned away, back to the task page."""
    if task.kind != TaskKind.TOOL_APPROVAL:
        return None
    messages.error(
        request, "This task asks for a tool call's approval: approve or reject that call."
    )
    return redirect("approvals:task", task_id=task.pk)


@require_POST
@require(Capability.DECIDE)
def task_decide(request: HttpRequest, task_id: int) -> HttpResponse:
    task = access_task(request.user, task_id, to_decide=True)
    if refused := _refuse_tool_approval(request, task):
        return refused
    if task.kind == TaskKind.REVIEW:
        messages.error(request, "This task reviews a reply that went out: say if it was right.")
        return redirect("approvals:task", task_id=task.pk)
    form = DecisionForm(request.POST)
    # Whatever happens, the operator's edited text comes back to them: nothing typed is lost.
    typed = request.POST.get("final_text")
    queue = _queue_filters(QueryDict(request.POST.get("queue", "")))
    if request.POST.get("action") == HOLD:
        messages.info(request, "Nothing was sent: Enter does not decide. Choose a button below.")
        return _render_task(request, task, form, draft=typed, queue=queue)
    if not form.is_valid():
        shown = [name for name in FIELDS_WITH_ERRORS_SHOWN if name in form.errors]
        if not shown or set(form.errors) - set(shown):
            messages.error(request, "The decision form was incomplete; nothing was recorded.")
        error = DecisionError(form.errors[shown[0]][0], field=shown[0]) if shown else None
        return _render_task(request, task, form, status=400, draft=typed, error=error, queue=queue)
    data = form.cleaned_data
    try:
        decision = decide_task(
            task_id=task.pk,
            actor=request.user,
            action=data["action"],
            final_text=data["final_text"],
            reason=data["reason"],
            expected_version=data["version"],
            reason_codes=data["reason_codes"],
            corrected_category=data["corrected_category"],
            corrected_urgency=data["corrected_urgency"],
        )
    except TaskConflict as conflict:
        messages.error(request, str(conflict))
        task.refresh_from_db()
        return _render_task(
            request, access_task(request.user, task_id), form, status=409, draft=typed, queue=queue
        )
    except DecisionError as error:
        if not error.field:
            messages.error(request, str(error))
        return _render_task(request, task, form, status=400, draft=typed, error=error, queue=queue)
    messages.success(request, f"Task {task.pk}: {decision.outcome}.")
    back_to_queue = reverse("approvals:inbox") + (f"?{queue}" if queue else "")
    if request.POST.get("then") == "next":
        _, remaining = open_tasks(QueryDict(queue))
        # An escalated task waits again for someone else, not for the one who handed it on.
        remaining = remaining.exclude(step_id=task.step_id)
        following = remaining.values_list("pk", flat=True).first()
        if following:
            return redirect(
                reverse("approvals:task", kwargs={"task_id": following})
                + (f"?{queue}" if queue else "")
            )
    return redirect(back_to_queue)


@require_POST
@require(Capability.DECIDE)
def task_resume(request: HttpRequest, task_id: int) -> HttpResponse:
    """Resume a run a limit paused, with more budget."""
    task = access_task(request.user, task_id, to_decide=True)
    if refused := _refuse_tool_approval(request, task):
        return refused
    try:
        version = int(request.POST.get("version", ""))
    except ValueError:
        version = None
    try:
        resume_run(task_id=task.pk, actor=request.user, expected_version=version)
    except (DecisionError, RunControlError) as problem:  # a conflict is a DecisionError too
        messages.error(request, str(problem))
        return redirect("approvals:task", task_id=task.pk)
    messages.success(request, f"Run {task.run_id} resumed with more budget.")
    return redirect("runs:detail", run_id=task.run_id)


@require_POST
@require(Capability.DECIDE)
def task_decide_tool(request: HttpRequest, task_id: int) -> HttpResponse:
    """Approve or reject the one tool call a tool-approval task shows."""
    task = access_task(request.user, task_id, to_decide=True)
    if task.kind != TaskKind.TOOL_APPROVAL:
        messages.error(request, "This task does not ask for a tool call's approval.")
        return redirect("approvals:task", task_id=task.pk)
    form = ToolDecisionForm(request.POST)
    queue = _queue_filters(QueryDict(request.POST.get("queue", "")))
    if not form.is_valid():
        messages.error(request, "The decision form was incomplete; nothing was recorded.")
        return _render_task(request, task, form, status=400, queue=queue)
    data = form.cleaned_data
    try:
        decision = decide_tool_approval(
            task_id=task.pk,
            actor=request.user,
            approve=data["action"] == "approve",
            reason=data["reason"],
            expected_version=data["version"],
        )
    except TaskConflict as conflict:
        messages.error(request, str(conflict))
        return _render_task(
            request, access_task(request.user, task_id), form, status=409, queue=queue
        )
    except DecisionError as error:
        if not error.field:
            messages.error(request, str(error))
        return _render_task(request, task, form, status=400, error=error, queue=queue)
    messages.success(
        request, f"Task {task.pk}: the {task.proposal.get('tool')} call was {decision.outcome}."
    )
    return redirect(reverse("approvals:inbox") + (f"?{queue}" if queue else ""))
