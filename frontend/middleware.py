from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest

from annotation.errors import DomainError, Forbidden, NotFound


class DomainErrorMiddleware:
    """Page views call the same services as the API; a domain error they let through becomes the
    matching 404/403/4xx page instead of a 500 (the API maps them in its exception handler)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError):
            return None
        if isinstance(exception, NotFound):
            raise Http404(exception.message)
        if isinstance(exception, Forbidden):
            raise PermissionDenied(exception.message)
        response = HttpResponseBadRequest(exception.message, content_type="text/plain; charset=utf-8")
        response.status_code = exception.status_code
        return response
