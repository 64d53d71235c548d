from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from console.access import Capability, can


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if can(request.user, Capability.VIEW_QUEUE):
        return redirect("approvals:inbox")
    return render(request, "console/no_screens.html", status=403)
