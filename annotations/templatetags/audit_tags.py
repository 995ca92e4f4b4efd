"""Template filters: `{{ text|safe_markdown }}` renders user markdown sanitised."""

from django import template

from annotations.core.markdown import markdown_to_safe_html

register = template.Library()


@register.filter
def safe_markdown(text: str):
    """Markdown to sanitised HTML (see annotations.core.markdown)."""
    return markdown_to_safe_html(text)
