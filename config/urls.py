from django.contrib import admin
from django.urls import include, path
from csp.decorators import csp_update
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .health import healthz

SWAGGER_CDN = "https://cdn.jsdelivr.net"
SWAGGER_CSP = {"script-src": [SWAGGER_CDN], "style-src": [SWAGGER_CDN], "img-src": [SWAGGER_CDN]}

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("django-admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up code as a script file, not inline, so the docs
    # page needs only the CDN Swagger UI comes from added to the Content-Security-Policy.
    path("api/docs/", csp_update(SWAGGER_CSP)(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
    path("api/", include("annotation.urls")),
    path("api/", include("training.urls")),
    path("", include("frontend.urls")),
]
