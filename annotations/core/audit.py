"""The audit log of administrative actions."""

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.db import models
from django.db.models import QuerySet

from annotations.models import AuditEvent


def audit_event_record(
    *, actor, action: str, target: models.Model | None = None, details: dict | None = None
) -> AuditEvent:
    """Append one event (e.g. action="run.start") about `target` by `actor` (None for the system)."""
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        details=details or {},
    )


def audit_event_list(*, action: str | None = None) -> QuerySet[AuditEvent]:
    """Audit events newest first, with their actor, optionally of one action (e.g. data.export)."""
    events = AuditEvent.objects.select_related("actor").order_by("-created_at", "-id")
    if action:
        events = events.filter(action=action)
    return events


_ACTIONS = {ADDITION: "admin.add", CHANGE: "admin.change", DELETION: "admin.delete"}


def admin_log_entry_audit(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    """post_save receiver of LogEntry: append the matching audit event."""
    if not created:
        return
    content_type = instance.content_type
    AuditEvent.objects.create(
        actor_id=instance.user_id,
        action=_ACTIONS.get(instance.action_flag, "admin.other"),
        target_type=f"{content_type.app_label}.{content_type.model}" if content_type else "",
        target_id=str(instance.object_id or "")[:100],
        details={"object": instance.object_repr, "message": instance.get_change_message()},
    )
