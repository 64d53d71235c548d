"""API errors as one JSON shape: {"error": "...", "fields": {"name": ["..."]}}."""

from typing import Any

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        response.data = {"error": "The request is invalid.", "fields": fields}
    elif isinstance(exc, exceptions.ParseError):
        response.data = {"error": f"The body is not valid JSON: {exc.detail}"}
    else:
        detail = getattr(exc, "detail", str(exc))
        response.data = {"error": str(detail)}
    return response
