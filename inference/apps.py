"""App configuration."""

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    """Inference app."""

    name = "inference"
    default_auto_field = "django.db.models.BigAutoField"
