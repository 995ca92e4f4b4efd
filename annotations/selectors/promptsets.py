"""Reads of prompt sets: the list, counts per group and per template, and prompt search."""

from django.db.models import Count, Q, QuerySet

from annotations.exceptions import NotFoundError
from annotations.models import Prompt, PromptSet


def promptset_list() -> QuerySet[PromptSet]:
    """Every prompt set (name, newest version first) with its prompt and run counts."""
    return (
        PromptSet.objects.select_related("created_by")
        .annotate(prompt_count=Count("prompts", distinct=True), run_count=Count("runs", distinct=True))
        .order_by("name", "-version")
    )


def promptset_get(*, prompt_set_id: int) -> PromptSet:
    """One prompt set with its author and previous version; NotFoundError when missing."""
    prompt_set = PromptSet.objects.select_related("created_by", "previous").filter(pk=prompt_set_id).first()
    if prompt_set is None:
        raise NotFoundError("No such prompt set.")
    return prompt_set


def promptset_counts(*, prompt_set: PromptSet) -> dict:
    """Prompts per group (with axis) and per template, by aggregate queries; and the total."""
    prompts = Prompt.objects.filter(prompt_set=prompt_set)
    per_group = list(
        prompts.values("group_id", "group__key", "group__name", "group__axis__key", "group__is_control")
        .annotate(count=Count("id"))
        .order_by("group__axis__key", "group__key")
    )
    per_template = list(
        prompts.values("template_id", "template__key", "template__topic")
        .annotate(count=Count("id"))
        .order_by("template__key")
    )
    return {
        "total": sum(row["count"] for row in per_group),
        "per_group": per_group,
        "per_template": per_template,
    }


def prompt_search(
    *, prompt_set: PromptSet, search: str = "", group_id: int | None = None, template_id: int | None = None
) -> QuerySet[Prompt]:
    """The set's prompts in order, filtered by text or key, group and template; related rows joined."""
    prompts = Prompt.objects.filter(prompt_set=prompt_set).select_related(
        "template", "group", "group__axis", "member"
    )
    if search:
        prompts = prompts.filter(Q(text__icontains=search) | Q(key__icontains=search))
    if group_id is not None:
        prompts = prompts.filter(group_id=group_id)
    if template_id is not None:
        prompts = prompts.filter(template_id=template_id)
    return prompts.order_by("position")
