"""Template tags of the dashboards: `{% table_cell row column %}` renders one report cell."""

from django import template
from django.utils.html import format_html

from annotations.report_formats import format_cell

register = template.Library()


@register.simple_tag
def table_cell(row: dict, column: dict):
    """A report cell as escaped HTML; an undefined statistic is marked and says why."""
    value = row.get(column["key"])
    text = format_cell(value, column["kind"])
    if column["kind"] in ("estimate", "rate") and value and value["value"] is None:
        return format_html('<span class="undefined">{}</span>', text)
    return text
