"""Changes made in the Django admin site go to the audit log too (Django records them as LogEntry rows)."""

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry

from annotations.models import AuditEvent

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
