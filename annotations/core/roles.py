"""The three roles (admin, researcher, annotator) as Django groups with permissions.

Capabilities are checked as permissions (`user.has_perm`), so one can also be granted to a single user
(e.g. dashboards for a senior annotator) without a new role.
"""

from functools import cache

from django.apps import apps as global_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models

from annotations.core import prepared

_APPS = ("annotations", "inference")
_ADMIN_APPS = ("auth",)  # admins also manage users and role groups (API tokens are annotations.ApiToken)


class Role(models.TextChoices):
    """A role is a Django group of the same name."""

    ADMIN = "admin", "Admin"
    RESEARCHER = "researcher", "Researcher"
    ANNOTATOR = "annotator", "Annotator"


_RESEARCHER_EXTRA = (
    "annotations.view_dashboard",
    "annotations.adjudicate_campaign",
    "annotations.export_labels",
    "annotations.add_campaign",
    "annotations.change_campaign",
    "annotations.add_campaignitem",
    "annotations.add_adjudication",
    "annotations.change_adjudication",
)
_ANNOTATOR = ("annotations.label_campaign", "annotations.add_label", "annotations.change_label")


def _permissions(codes: list[str]) -> list[Permission]:
    wanted = {tuple(code.split(".", 1)) for code in codes}
    perms = Permission.objects.filter(content_type__app_label__in=_APPS + _ADMIN_APPS).select_related(
        "content_type"
    )
    return [p for p in perms if (p.content_type.app_label, p.codename) in wanted]


def role_permission_codes() -> dict[Role, list[str]]:
    """Map each role to its permission codes ('app.codename')."""
    every = [
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(content_type__app_label__in=_APPS).select_related("content_type")
    ]
    # every model's view permission, except API tokens: whose tokens exist is an admin's business
    views = [c for c in every if c.split(".", 1)[1].startswith("view_") and c != "annotations.view_apitoken"]
    managing = [
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.filter(content_type__app_label__in=_ADMIN_APPS).select_related(
            "content_type"
        )
    ]
    return {
        Role.ADMIN: every + managing,
        Role.RESEARCHER: sorted({*views, *_RESEARCHER_EXTRA}),
        Role.ANNOTATOR: list(_ANNOTATOR),
    }


def roles_sync() -> None:
    """Create the role groups and set exactly their permissions (idempotent)."""
    for label in _APPS + _ADMIN_APPS:  # post_migrate may run before the other apps' permissions exist
        create_permissions(global_apps.get_app_config(label), verbosity=0)
    for role, codes in role_permission_codes().items():
        group, _ = Group.objects.get_or_create(name=role.value)
        group.permissions.set(_permissions(codes))


def roles_sync_on_migrate(sender, **kwargs) -> None:
    """post_migrate receiver: create the role groups with their permissions."""
    roles_sync()


def access_sql(user: str) -> str:
    """SQL for the rows (app label, name) of a user's group names (app label '') and permissions.

    `user` is an SQL expression for the user's id: a parameter (`%(user)s`) or a subquery, so the same
    rows can be read alone (`_access_statement`) or joined to the authenticating query of an API token
    (annotations.core.tokens), which then costs one round trip for the token, its user and their access.
    """
    model = get_user_model()
    user_groups = model.groups.through._meta.db_table
    user_perms = model.user_permissions.through._meta.db_table
    group_perms = Group.permissions.through._meta.db_table
    return f"""SELECT '' AS app, g.name AS name FROM {Group._meta.db_table} g
WHERE g.id IN (SELECT group_id FROM {user_groups} WHERE user_id = {user})
UNION ALL
SELECT ct.app_label, p.codename FROM {Permission._meta.db_table} p
JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id
WHERE p.id IN (SELECT permission_id FROM {user_perms} WHERE user_id = {user})
   OR p.id IN (SELECT gp.permission_id FROM {group_perms} gp
               WHERE gp.group_id IN (SELECT group_id FROM {user_groups} WHERE user_id = {user}))"""  # noqa: S608


@cache
def _access_statement() -> prepared.Statement:
    """One query for a user's group names (app label '') and permissions (app label, codename)."""
    return prepared.Statement("audit_user_access", access_sql("%(user)s"))


def access_remember(user, rows) -> None:
    """Keep (role names, 'app.codename' permissions) from `access_sql` rows on the user object, for
    `user_roles` and `has_perm` during this request; rows of None (an outer join's empty side) are skipped."""
    rows = [(app, name) for app, name in rows if name is not None]
    roles = {name for app, name in rows if not app} & {r.value for r in Role}
    user._access_cache = roles, {f"{app}.{name}" for app, name in rows if app}


def _user_access(user) -> tuple[set[str], set[str]]:
    """(role names, 'app.codename' permissions) of a non-superuser, read once per request in one query.

    Cached on the user object (which lives for one request), so a change of role applies on the next one.
    """
    if not hasattr(user, "_access_cache"):
        with connection.cursor() as cursor:
            _access_statement().execute(cursor, {"user": user.pk})
            access_remember(user, cursor.fetchall())
    return user._access_cache


def user_roles(user) -> set[str]:
    """The role names a user holds; superusers hold every role."""
    if not user.is_authenticated:
        return set()
    if user.is_superuser:
        return {role.value for role in Role}
    return _user_access(user)[0]


class RoleModelBackend(ModelBackend):
    """Django's ModelBackend, reading a user's permissions in the same query as their roles.

    The labelling endpoints check a role and a permission on every request: one query instead of three.
    """

    def get_all_permissions(self, user_obj, obj=None) -> set[str]:
        """As ModelBackend (which caches the set on the user), loaded with the user's roles."""
        usable = user_obj.is_active and not user_obj.is_anonymous and obj is None
        if usable and not user_obj.is_superuser and not hasattr(user_obj, "_perm_cache"):
            user_obj._perm_cache = _user_access(user_obj)[1]
        return super().get_all_permissions(user_obj, obj)


def user_is_admin(user) -> bool:
    """Admins manage everything."""
    return Role.ADMIN in user_roles(user)


def user_is_researcher(user) -> bool:
    """Researchers (and admins) read everything and export."""
    return bool({Role.ADMIN, Role.RESEARCHER} & user_roles(user))


def user_is_annotator(user) -> bool:
    """Annotators label the campaigns they are assigned to."""
    return Role.ANNOTATOR in user_roles(user)
