"""/api/ for the annotation domain: each package owns its routes."""

from django.urls import include, path

urlpatterns = [
    path("", include("annotation.labeling.urls")),
    path("", include("annotation.agreement.urls")),
    path("", include("annotation.adjudication.urls")),
    path("", include("annotation.exports.urls")),
]
