"""Role checks for HTML views; an authenticated user without the role gets 403, a guest the login page.

Every view declares who may reach it as `view.access_policy` (docs/admins.md, "Roles"):
`role_required(role)` sets it to the role; `access_policy(name)` declares it for views without a role
check (the login page is "public", the start page "authenticated"). The role-matrix test reads it.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from annotations.core.roles import user_is_admin, user_is_annotator, user_is_researcher

_CHECKS: dict[str, Callable] = {
    "admin": user_is_admin,
    "researcher": user_is_researcher,
    "annotator": user_is_annotator,
    "dashboard": lambda user: user.has_perm("annotations.view_dashboard"),
}
POLICIES = ("public", "authenticated", *_CHECKS)


def access_policy(name: str) -> Callable:
    """Declare the access policy of a view that checks no role itself (e.g. "public", "authenticated")."""
    if name not in POLICIES:
        raise ValueError(f"unknown access policy {name!r}; choose one of {', '.join(POLICIES)}")

    def decorator(view: Callable) -> Callable:
        view.access_policy = name
        return view

    return decorator


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

        wrapped.access_policy = role
        return wrapped

    return decorator
