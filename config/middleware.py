"""Answers a request that lost its database with a clear 503 instead of a 500."""

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

RETRY_AFTER_SECONDS = 5


class DatabaseUnavailableMiddleware:
    """A database restart or failover makes the queries of in-flight requests fail with
    OperationalError / InterfaceError. The transaction of such a request is rolled back by
    PostgreSQL, so nothing is half-written; the client is told to retry, and Django replaces the
    dead connection before the next request (CONN_HEALTH_CHECKS). Only errors that mean the
    database could not be reached or the connection broke land here: a constraint violation is an
    IntegrityError and still surfaces as the bug it is."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        response = JsonResponse(
            {"detail": "The database is unavailable for a moment. Retry in a few seconds; a judgment resent with the same "
                       "idempotency key is stored once.",
             "code": "database_unavailable"},
            status=503,
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
