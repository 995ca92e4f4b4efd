"""Template context: the current user's roles, for the navigation."""

from annotations.core.roles import user_is_admin, user_is_annotator, user_is_researcher


def roles(request) -> dict:
    """Expose is_admin / is_researcher / is_annotator / can_see_dashboards to every template."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "is_admin": user_is_admin(user),
        "is_researcher": user_is_researcher(user),
        "is_annotator": user_is_annotator(user),
        "can_see_dashboards": user.has_perm("annotations.view_dashboard"),
    }
