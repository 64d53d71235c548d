"""The review of a reply that went out alone: the reviewer says whether it was right."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console.access import Capability, access_task, require
from console.views.approvals import HOLD, _queue_filters, _render_task
from orchestration.engine.states import DecisionOutcome, TaskKind
from orchestration.services.decisions import DecisionError, TaskConflict
from orchestration.services.reviews import RIGHT, WRONG, review_reply


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(choices=[(v, v) for v in (RIGHT, WRONG)])
    should_have_been = forms.CharField(required=False, strip=False, max_length=20000)
    note = forms.CharField(required=False, max_length=2000)
    version = forms.IntegerField(min_value=1)
    reason_codes = forms.MultipleChoiceField(
        choices=lambda: list(settings.FEEDBACK_REASON_CODES.items()),
        required=False,
        error_messages={"invalid_choice": "Unknown reason code %(value)r."},
    )


@require_POST
@require(Capability.DECIDE)
def task_review(request: HttpRequest, task_id: int) -> HttpResponse:
    """A reviewer's verdict on a reply that went out alone."""
    task = access_task(request.user, task_id, to_decide=True)
    if task.kind != TaskKind.REVIEW:
        messages.error(request, "This task is not a review of a reply sent alone.")
        return redirect("approvals:task", task_id=task.pk)
    form = ReviewForm(request.POST)
    queue = _queue_filters(QueryDict(request.POST.get("queue", "")))
    if request.POST.get("verdict") == HOLD:
        messages.info(request, "Nothing was recorded: Enter does not decide. Choose a button.")
        return _render_task(request, task, form, queue=queue)
    if not form.is_valid():
        field = next(iter(form.errors))
        error = DecisionError(form.errors[field][0], field=field)
        messages.error(request, "The review form was incomplete; nothing was recorded.")
        return _render_task(request, task, form, status=400, error=error, queue=queue)
    data = form.cleaned_data
    try:
        decision = review_reply(
            task_id=task.pk,
            actor=request.user,
            verdict=data["verdict"],
            reason_codes=data["reason_codes"],
            should_have_been=data["should_have_been"] if data["verdict"] == WRONG else "",
            note=data["note"],
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
    verdict = "right" if decision.outcome == DecisionOutcome.APPROVED else "wrong"
    messages.success(request, f"Task {task.pk}: the reply sent alone was {verdict}.")
    return redirect(reverse("approvals:inbox") + (f"?{queue}" if queue else ""))
