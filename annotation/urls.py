from django.urls import include, path

urlpatterns = [
    path("", include("annotation.agreement_urls")),
    path("", include("annotation.export_urls")),
]
