from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the Celery tasks and installs the batch-event sender (events never imports tasks).
        from annotation import tasks  # noqa: F401
