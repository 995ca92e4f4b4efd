"""App configuration: makes sure the role groups exist after every migrate."""

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AnnotationsConfig(AppConfig):
    """Annotations app."""

    name = "annotations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the `id` URL converter; connect the role sync and the admin log to the audit log."""
        from django.contrib.admin.models import LogEntry
        from django.db.models.signals import post_save
        from django.urls import register_converter

        from annotations.core.ids import IdConverter

        # Here and not in a urls module: ready() runs before any URL pattern is compiled, whichever
        # urls module is imported first.
        register_converter(IdConverter, "id")

        from annotations.core.audit import admin_log_entry_audit
        from annotations.core.roles import roles_sync_on_migrate

        post_migrate.connect(roles_sync_on_migrate, sender=self)
        post_save.connect(admin_log_entry_audit, sender=LogEntry, dispatch_uid="audit-admin-log-entry")
