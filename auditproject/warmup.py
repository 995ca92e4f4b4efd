"""Load what the first request would otherwise load: URLconf, views, serializers, templates, statistics.

A web worker calls `warm_up()` once at start (wsgi.py, asgi.py), so its first request answers as
fast as the rest; the dashboard benchmark does the same. Cheap (about half a second), and safe to
call again.
"""

from django.template.loader import get_template
from django.urls import get_resolver

# The pages whose first render is slow enough to matter (the dashboards' template is large).
_TEMPLATES = ("annotations/dashboard_detail.html", "annotations/campaign_label.html", "base.html")


def warm_up() -> None:
    """Import every view (by resolving the URLconf), compile the main templates, import statsmodels."""
    get_resolver().url_patterns  # noqa: B018 (imports every view module and compiles the patterns)
    for name in _TEMPLATES:
        get_template(name)
    import statsmodels.api  # noqa: F401 (the stratified tests use it; a slow first import)
