"""`{% label_plan_choices as planner %}`: the pilot campaigns and scorers the label planner box offers."""

from django import template

from annotations.analysis.planner import label_plan_choices as _choices

register = template.Library()


@register.simple_tag
def label_plan_choices() -> dict[str, list[dict]]:
    """Campaigns with a human final label and scorers that assign categories (two queries)."""
    return _choices()
