"""POST /api/v1/tickets: submit a ticket; GET /api/v1/runs/<id>: follow its run."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.access import Capability, access_run, can
from console.api.serializers import RunStatus, TicketAccepted, TicketInput
from orchestration.models import Run
from orchestration.services.tickets import DuplicateTicket, ingest_tickets


class CanIngest(BasePermission):
    message = "This account may not submit tickets."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can(request.user, Capability.INGEST)


class CanViewRuns(BasePermission):
    message = "This account may not read runs."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can(request.user, Capability.VIEW_RUNS) or can(request.user, Capability.INGEST)


class TicketCreateView(APIView):
    permission_classes = [CanIngest]

    @extend_schema(request=TicketInput, responses={201: TicketAccepted})
    def post(self, request: Request) -> Response:
        try:
            request._request.body  # noqa: B018  (reading it enforces the size limit)
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return Response(
                {"error": f"The body is larger than the {limit} bytes a ticket may have."},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        if not isinstance(request.data, dict):
            return Response(
                {"error": "The body must be a JSON object describing one ticket."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        serializer = TicketInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            (ticket,) = ingest_tickets(
                tickets=[serializer.to_new_ticket()],
                actor=request.user,
                actor_label=f"api:{request.user.get_username()}",
            )
        except DuplicateTicket as duplicate:
            return Response(
                {"error": str(duplicate), "fields": {"external_id": ["Already submitted."]}},
                status=status.HTTP_409_CONFLICT,
            )
        run = ticket.runs.get()
        body = TicketAccepted(
            {
                "ticket_id": ticket.pk,
                "run_id": run.pk,
                "run_url": reverse("api:run", kwargs={"run_id": run.pk}),
            }
        ).data
        return Response(body, status=status.HTTP_201_CREATED)


class RunStatusView(APIView):
    permission_classes = [CanViewRuns]

    @extend_schema(responses={200: RunStatus})
    def get(self, request: Request, run_id: int) -> Response:
        # Console roles read any run; an integration account only the runs it started.
        if can(request.user, Capability.VIEW_RUNS):
            run = access_run(request.user, run_id)
        else:
            run = Run.objects.filter(pk=run_id, ticket__submitted_by=request.user).first()
            if run is None:
                return Response({"error": "No such run."}, status=status.HTTP_404_NOT_FOUND)
        return Response(RunStatus(run).data)
