from django.urls import path

from .apis import RoundCancelApi, RoundDetailApi, RoundListApi, RoundResumeApi

urlpatterns = [
    path("rounds/", RoundListApi.as_view(), name="round-list"),
    path("rounds/<int:round_id>/", RoundDetailApi.as_view(), name="round-detail"),
    path("rounds/<int:round_id>/cancel/", RoundCancelApi.as_view(), name="round-cancel"),
    path("rounds/<int:round_id>/resume/", RoundResumeApi.as_view(), name="round-resume"),
]
