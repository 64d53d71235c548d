"""The drafter's exemplars: approved replies it may follow for similar tickets, per category,
and retiring one (with a reason) so it is never followed again.

Ticket text, drafts and replies are customers' and operators' words: the templates escape
them and nothing here marks them safe."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_http_methods

from console.access import Capability, require
from orchestration.models import Exemplar
from orchestration.models.taxonomy import Category
from orchestration.services.learning import LearningError, retire_exemplar

PAGE_SIZE = 30


class RetireForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the exemplar is retired."},
    )


def _exemplars() -> QuerySet[Exemplar]:
    return Exemplar.objects.select_related("decision__task", "retired_by")


@require_GET
@require(Capability.VIEW_LEARNING)
def exemplar_list(request: HttpRequest) -> HttpResponse:
    """Grouped by category, heaviest and newest first within one. ``?category=`` narrows the
    list to one; an unknown category shows them all."""
    counts = {
        row["category"]: (row["total"], row["in_use"])
        for row in Exemplar.objects.order_by()
        .values("category")
        .annotate(total=Count("pk"), in_use=Count("pk", filter=Q(retired_at__isnull=True)))
    }
    # Categories on record that the taxonomy no longer names are still listed.
    labels = dict(Category.choices) | {c: c for c in sorted(counts) if c not in Category.values}
    categories = []
    for value, label in labels.items():
        total, in_use = counts.get(value, (0, 0))
        categories.append(
            {"value": value, "label": label, "in_use": in_use, "retired": total - in_use}
        )
    chosen = request.GET.get("category", "")
    if chosen not in labels:
        chosen = ""
    # In use before retired, then the heaviest and newest.
    found = _exemplars().order_by(
        "category", F("retired_at").asc(nulls_first=True), "-weight", "-created_at", "-pk"
    )
    if chosen:
        found = found.filter(category=chosen)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    groups: list[dict[str, Any]] = []
    for exemplar in page.object_list:
        if not groups or groups[-1]["category"] != exemplar.category:
            label = labels.get(exemplar.category, exemplar.category)
            groups.append({"category": exemplar.category, "label": label, "exemplars": []})
        groups[-1]["exemplars"].append(exemplar)
    context = {
        "categories": categories,
        "groups": groups,
        "chosen": chosen,
        "page": page,
        "query": urlencode({"category": chosen}) if chosen else "",
    }
    return render(request, "console/learning/exemplars.html", context)


@require_http_methods(["GET", "POST"])
@require(Capability.ADMINISTER)
def exemplar_retire(request: HttpRequest, exemplar_id: int) -> HttpResponse:
    """The GET page shows the exemplar and asks why; a refused POST comes back to it."""
    exemplar = get_object_or_404(_exemplars(), pk=exemplar_id)
    if exemplar.retired_at is not None:
        messages.info(request, f"Exemplar {exemplar.pk} is already retired.")
        return redirect("learning:exemplars")
    form = RetireForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            retire_exemplar(
                exemplar_id=exemplar.pk, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except LearningError as problem:
            form.add_error("reason", str(problem))
        else:
            messages.success(
                request, f"Exemplar {exemplar.pk} is retired: the drafter no longer follows it."
            )
            return redirect("learning:exemplars")
    return render(
        request,
        "console/learning/retire.html",
        {"exemplar": exemplar, "form": form},
        status=400 if form.is_bound else 200,
    )


urlpatterns: list[URLPattern] = [
    path("exemplars/", exemplar_list, name="exemplars"),
    path("exemplars/<int:exemplar_id>/retire/", exemplar_retire, name="retire"),
]
