"""Reads of the prompt library: templates, axes, groups and their members."""

from django.db import connection
from django.db.models import Count, Prefetch, Q, QuerySet

from annotations.models import Group, GroupMember, PromptTemplate


def member_attribute_names() -> set[str]:
    """Every attribute name used by a member in the library (the placeholders templates may use)."""
    if connection.vendor == "postgresql":  # one pass in the database instead of loading every member
        table = connection.ops.quote_name(GroupMember._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT DISTINCT jsonb_object_keys(attributes) FROM {table} "  # noqa: S608 (our table name)
                "WHERE jsonb_typeof(attributes) = 'object'"
            )
            return {name for (name,) in cursor.fetchall()}
    names: set[str] = set()
    for attributes in GroupMember.objects.values_list("attributes", flat=True).distinct():
        if isinstance(attributes, dict):
            names.update(attributes)
    return names


def template_list(*, search: str = "") -> QuerySet[PromptTemplate]:
    """Templates by key, filtered by `search` in key, text, topic or target group."""
    templates = PromptTemplate.objects.order_by("key")
    if search:
        templates = templates.filter(
            Q(key__icontains=search)
            | Q(text__icontains=search)
            | Q(topic__icontains=search)
            | Q(target_group__icontains=search)
        )
    return templates


def group_list() -> QuerySet[Group]:
    """Groups by axis then key, with their axis, member count and members (by value) prefetched."""
    return (
        Group.objects.select_related("axis")
        .annotate(member_count=Count("members"))
        .prefetch_related(Prefetch("members", queryset=GroupMember.objects.order_by("value")))
        .order_by("axis__key", "key")
    )


def group_choices() -> list[tuple[str, str, int]]:
    """(ref "axis/group", label, member count) for every group, for choosing groups to expand."""
    rows = (
        Group.objects.values("axis__key", "axis__name", "key", "name", "is_control")
        .annotate(member_count=Count("members"))
        .order_by("axis__key", "key")
    )
    return [
        (
            f"{row['axis__key']}/{row['key']}",
            f"{row['axis__name']} / {row['name']}{' (control)' if row['is_control'] else ''}",
            row["member_count"],
        )
        for row in rows
    ]
