"""Reads of the audit log."""

from django.db.models import QuerySet

from annotations.models import AuditEvent


def audit_event_list(*, action: str | None = None) -> QuerySet[AuditEvent]:
    """Audit events newest first, with their actor, optionally of one action (e.g. data.export)."""
    events = AuditEvent.objects.select_related("actor").order_by("-created_at", "-id")
    if action:
        events = events.filter(action=action)
    return events
