from django.db import connection
from django.http import JsonResponse


def healthz(request):
    """Liveness + database reachability, for the load balancer and compose health checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return JsonResponse({"status": "ok"})
    except Exception as exc:  # report, don't raise: a health check must answer
        return JsonResponse({"status": "error", "detail": type(exc).__name__}, status=503)
