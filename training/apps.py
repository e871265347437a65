from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the Celery tasks (which install the run sender services use) and hangs export +
        # training on annotation's batch_closed event.
        from . import handlers, tasks  # noqa: F401
