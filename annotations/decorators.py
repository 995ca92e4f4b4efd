"""Role checks for HTML views; an authenticated user without the role gets 403, a guest the login page."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from annotations.roles import user_is_admin, user_is_annotator, user_is_researcher

_CHECKS: dict[str, Callable] = {
    "admin": user_is_admin,
    "researcher": user_is_researcher,
    "annotator": user_is_annotator,
    "dashboard": lambda user: user.has_perm("annotations.view_dashboard"),
}


def role_required(role: str) -> Callable:
    """Decorate a view so only users with `role` (admin, researcher, annotator, dashboard) reach it."""
    check = _CHECKS[role]

    def decorator(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
