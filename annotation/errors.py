"""Domain errors raised by services, and the one place that maps them (and every other
API error) to a 4xx with a message that says what to fix."""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler


class DomainError(Exception):
    """A rule of the domain was violated. Subclasses pick the HTTP status and a stable code."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Forbidden(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"


class Conflict(DomainError):
    """The request is valid but the object's state does not allow it (e.g. closing a draft)."""

    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


class LeaseExpired(Conflict):
    code = "lease_expired"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ImportRejected(DomainError):
    """A file had bad lines; nothing was imported. `errors` lists every bad line."""

    code = "import_rejected"

    def __init__(self, errors: list[dict]):
        n = len(errors)
        super().__init__(f"{n} bad line{'s' if n != 1 else ''}; nothing was imported.")
        self.errors = errors


def api_exception_handler(exc, context):
    if isinstance(exc, ImportRejected):
        return Response({"detail": exc.message, "code": exc.code, "errors": exc.errors}, status=exc.status_code)
    if isinstance(exc, DomainError):
        return Response({"detail": exc.message, "code": exc.code, **exc.extra}, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):  # DRF read the body through HttpRequest.body
        return Response({"detail": f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes. Split it, or "
                                   "import big files with `manage.py import_pairs` or the dashboard's upload.",
                         "code": "request_too_large"}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found, or not yours to see.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        # Serializer errors: keep the field map, add one sentence a person can read.
        response.data = {"detail": _summarise_field_errors(response.data), "errors": response.data}
    return response


def _summarise_field_errors(data: dict) -> str:
    parts = []
    for field, messages in data.items():
        if isinstance(messages, list):
            text = "; ".join(str(m) for m in messages if not isinstance(m, dict)) or "invalid"
        elif isinstance(messages, dict):
            text = "invalid: " + ", ".join(sorted(str(k) for k in messages))
        else:
            text = str(messages)
        parts.append(f"{field}: {text}")
    return "Invalid input. " + " | ".join(parts)
