"""Runs: the list, and one run with every step, span and decision."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from console.access import Capability, access_run, require
from console.views.task_page import decision_feedback
from orchestration.engine.states import RunStatus
from orchestration.models import Run
from orchestration.services.controls import RunControlError, cancel_run, retry_failed_step
from orchestration.services.replay import ReplayError, replay_run, replayable_steps

PAGE_SIZE = 50


class RunFilter(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "All statuses"), *[(s, s.replace("_", " ")) for s in RunStatus]],
        required=False,
    )


@require_GET
@require(Capability.VIEW_RUNS)
def run_list(request: HttpRequest) -> HttpResponse:
    filters = RunFilter(request.GET)
    runs = Run.objects.select_related("ticket", "workflow").order_by("-created_at", "-id")
    if filters.is_valid() and filters.cleaned_data["status"]:
        runs = runs.filter(status=filters.cleaned_data["status"])
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "console/runs/list.html",
        {"page": page, "filters": filters, "query": query.urlencode()},
    )


@require_GET
@require(Capability.VIEW_RUNS)
@vary_on_headers("HX-Request")
@never_cache
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = access_run(request.user, run_id)
    steps = list(run.steps.prefetch_related("spans", "tasks__decision__actor"))
    for step in steps:
        for task in step.tasks.all():
            if decision := getattr(task, "decision", None):
                decision.feedback = decision_feedback(task, decision)
    replies = list(run.replies.select_related("approved_by"))
    template = "console/runs/detail.html"
    if request.htmx and not request.htmx.boosted:
        template += "#run-body"
    context = {
        "run": run,
        "ticket": run.ticket,
        "steps": steps,
        "replies": replies,
        "replayable": replayable_steps(run),
    }
    return render(request, template, context)


@require_POST
@require(Capability.DECIDE)
def run_replay(request: HttpRequest, run_id: int) -> HttpResponse:
    """Replay a finished run from a step, as a dry run: nothing is written or sent, but the
    agents run again (model calls cost money), so it is for those who act on runs, not for
    read-only roles. The result is shown, not stored."""
    run = access_run(request.user, run_id)
    try:
        from_step = int(request.POST.get("from_step", ""))
    except ValueError:
        messages.error(request, "Choose the step to replay from.")
        return redirect("runs:detail", run_id=run.pk)
    try:
        replay = replay_run(run_id=run.pk, from_sequence=from_step, actor=request.user)
    except ReplayError as problem:
        messages.error(request, str(problem))
        return redirect("runs:detail", run_id=run.pk)
    return render(request, "console/runs/replay.html", {"run": run, "replay": replay})


@require_POST
@require(Capability.DECIDE)
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    run = access_run(request.user, run_id)
    try:
        cancel_run(run_id=run.pk, actor=request.user, reason=request.POST.get("reason", ""))
    except RunControlError as problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, f"Run {run.pk} cancelled.")
    return redirect("runs:detail", run_id=run.pk)


@require_POST
@require(Capability.DECIDE)
def run_retry(request: HttpRequest, run_id: int) -> HttpResponse:
    run = access_run(request.user, run_id)
    try:
        retry_failed_step(run_id=run.pk, actor=request.user)
    except RunControlError as problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, f"Run {run.pk}: the failed step is queued again.")
    return redirect("runs:detail", run_id=run.pk)
