"""Reads of the prompt library: templates, axes, groups and their members."""

from collections import Counter

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from annotations.core.exceptions import NotFoundError
from annotations.models import Group, GroupMember, Prompt, PromptSet, PromptTemplate


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


def _count_of(queryset: QuerySet, field: str) -> Coalesce:
    counted = (
        queryset.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("*")).values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def promptset_list() -> QuerySet[PromptSet]:
    """Every prompt set (name, newest version first) with its prompt count (a subquery) and run count."""
    return (
        PromptSet.objects.select_related("created_by")
        .annotate(
            prompt_count=_count_of(Prompt.objects.all(), "prompt_set"),
            # through the reverse relation: the library does not import inference (it sits below it)
            run_count=Count("runs", distinct=True),
        )
        .order_by("name", "-version")
    )


def promptset_get(*, prompt_set_id: int) -> PromptSet:
    """One prompt set with its author and previous version; NotFoundError when missing."""
    prompt_set = PromptSet.objects.select_related("created_by", "previous").filter(pk=prompt_set_id).first()
    if prompt_set is None:
        raise NotFoundError("No such prompt set.")
    return prompt_set


def promptset_counts(*, prompt_set: PromptSet) -> dict:
    """Prompts per group and per template, and the total, from one GROUP BY over (group, template).

    The aggregate has one row per group x template (a few thousand at most); summing those rows into
    the two tables here costs less than a second scan of the prompts.
    """
    per_group: Counter = Counter()
    per_template: Counter = Counter()
    cells = (
        Prompt.objects.filter(prompt_set=prompt_set)
        .order_by()
        .values_list("group_id", "template_id")
        .annotate(n=Count("*"))
    )
    for group_id, template_id, n in cells:
        per_group[group_id] += n
        per_template[template_id] += n
    groups = Group.objects.select_related("axis").in_bulk([pk for pk in per_group if pk is not None])
    templates = PromptTemplate.objects.only("key", "topic").in_bulk(
        [pk for pk in per_template if pk is not None]
    )
    group_rows = [
        {
            "group_id": pk,
            "axis": groups[pk].axis.key if pk in groups else "",
            "group": groups[pk].key if pk in groups else "",
            "name": groups[pk].name if pk in groups else "(none)",
            "is_control": groups[pk].is_control if pk in groups else False,
            "count": n,
        }
        for pk, n in per_group.items()
    ]
    template_rows = [
        {
            "template_id": pk,
            "key": templates[pk].key if pk in templates else "(none)",
            "topic": templates[pk].topic if pk in templates else "",
            "count": n,
        }
        for pk, n in per_template.items()
    ]
    return {
        "total": sum(per_group.values()),
        "per_group": sorted(group_rows, key=lambda row: (row["axis"], row["group"])),
        "per_template": sorted(template_rows, key=lambda row: row["key"]),
    }


def prompt_search(
    *, prompt_set: PromptSet, search: str = "", group_ref: str = "", template_key: str = ""
) -> QuerySet[Prompt]:
    """The set's prompts in order, filtered by text or key, group ("axis/group") and template key."""
    prompts = Prompt.objects.filter(prompt_set=prompt_set).select_related(
        "template", "group", "group__axis", "member"
    )
    if search:  # keys are lowercase slugs: a case-sensitive match of the lowercased query is cheaper
        prompts = prompts.filter(Q(text__icontains=search) | Q(key__contains=search.lower()))
    if group_ref:
        axis_key, _, group_key = group_ref.partition("/")
        group_id = (
            Group.objects.filter(axis__key=axis_key, key=group_key).values_list("pk", flat=True).first()
        )
        prompts = prompts.filter(group_id=group_id) if group_id else prompts.none()
    if template_key:
        template_id = PromptTemplate.objects.filter(key=template_key).values_list("pk", flat=True).first()
        prompts = prompts.filter(template_id=template_id) if template_id else prompts.none()
    return prompts.order_by("position")


def promptset_group_choices(*, prompt_set: PromptSet) -> list[tuple[str, str]]:
    """("axis/group", label) for the groups the set was built from (from its spec; no scan of prompts)."""
    refs = prompt_set.spec.get("groups", [])
    wanted = Q(pk__in=[])
    for ref in refs:
        axis_key, _, group_key = ref.partition("/")
        wanted |= Q(axis__key=axis_key, key=group_key)
    groups = Group.objects.select_related("axis").filter(wanted).order_by("axis__key", "key")
    return [(f"{g.axis.key}/{g.key}", f"{g.axis.name} / {g.name}") for g in groups]


class PromptPaginator(Paginator):
    """Pages of a set's prompts. Unfiltered (`is_whole_set`), page N is a range of positions, read
    through the (prompt_set, position) index, so the last page costs what the first does; an OFFSET
    would walk every earlier row. That needs positions 0..n-1 without gaps, which the expansion writes;
    a set with gaps (made some other way) is paged with OFFSET."""

    def __init__(self, prompts: QuerySet[Prompt], per_page: int, *, is_whole_set: bool) -> None:
        super().__init__(prompts, per_page)
        self.is_whole_set = is_whole_set

    def page(self, number) -> Page:
        """The page `number` (validated as Django's paginator does)."""
        if not self.is_whole_set:
            return super().page(number)
        number = self.validate_number(number)
        last = self.object_list.order_by("-position").values_list("position", flat=True).first()
        if last is not None and last != self.count - 1:
            return super().page(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list.filter(position__gte=bottom, position__lt=bottom + self.per_page))
        return self._get_page(rows, number, self)
