from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from console.access import admin_site_permission
from console.api import tickets as api_tickets
from console.views import approvals, audit, grants, home, learning, reviews, runs, tools

admin.site.has_permission = admin_site_permission
admin.site.site_header = "Switchboard administration"

approval_patterns = (
    [
        path("", approvals.inbox, name="inbox"),
        path("<int:task_id>/", approvals.task_detail, name="task"),
        path("<int:task_id>/decide/", approvals.task_decide, name="decide"),
        path("<int:task_id>/resume/", approvals.task_resume, name="resume"),
        path("<int:task_id>/decide-tool/", approvals.task_decide_tool, name="decide_tool"),
        path("<int:task_id>/review/", reviews.task_review, name="review"),
    ],
    "approvals",
)
run_patterns = (
    [
        path("", runs.run_list, name="list"),
        path("<int:run_id>/", runs.run_detail, name="detail"),
        path("<int:run_id>/cancel/", runs.run_cancel, name="cancel"),
        path("<int:run_id>/retry/", runs.run_retry, name="retry"),
        path("<int:run_id>/replay/", runs.run_replay, name="replay"),
    ],
    "runs",
)
api_patterns = (
    [
        path("tickets", api_tickets.TicketCreateView.as_view(), name="tickets"),
        path("runs/<int:run_id>", api_tickets.RunStatusView.as_view(), name="run"),
        path("schema", SpectacularAPIView.as_view(), name="schema"),
    ],
    "api",
)

urlpatterns = [
    path("", home.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("approvals/", include(approval_patterns)),
    path("runs/", include(run_patterns)),
    path("audit/", audit.audit_list, name="audit"),
    path("tools/", include((tools.urlpatterns, "tools"))),
    path("grants/", include((grants.urlpatterns, "grants"))),
    path("learning/", include((learning.urlpatterns, "learning"))),
    path("api/v1/", include(api_patterns)),
    path("django-admin/", admin.site.urls),
]
