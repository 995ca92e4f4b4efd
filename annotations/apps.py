"""App configuration: makes sure the role groups exist after every migrate."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnnotationsConfig(AppConfig):
    """Annotations app."""

    name = "annotations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the role sync to post_migrate (permissions only exist after migrations ran)."""
        from annotations.roles import roles_sync_on_migrate

        post_migrate.connect(roles_sync_on_migrate, sender=self)
