from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Hang export + training on the foundation's batch_closed event.
        from . import handlers  # noqa: F401
