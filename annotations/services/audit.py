"""The audit log of administrative actions."""

from django.db import models

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
