from django.urls import include, path

from .apis import TrainingRunCancelApi, TrainingRunDetailApi, TrainingRunListApi

urlpatterns = [
    path("training-runs/", TrainingRunListApi.as_view(), name="training-run-list"),
    path("training-runs/<int:run_id>/", TrainingRunDetailApi.as_view(), name="training-run-detail"),
    path("training-runs/<int:run_id>/cancel/", TrainingRunCancelApi.as_view(), name="training-run-cancel"),
    path("", include("training.rounds.urls")),
]
