"""Creating users with a role."""

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from annotations.core.exceptions import AuditError
from annotations.core.roles import Role, roles_sync


@transaction.atomic
def user_create(*, username: str, role: str, password: str, email: str = "", validate_password: bool = True):
    """Create (or update the role and password of) `username` with `role`; admins are also staff."""
    if role not in Role.values:
        raise AuditError(f"Unknown role {role!r}: choose one of {', '.join(Role.values)}.")
    if not username.strip():
        raise AuditError("The username is empty.")
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first() or user_model(username=username)
    user.email = email or user.email
    if validate_password:
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise AuditError("The password is too weak: " + " ".join(exc.messages)) from None
    user.set_password(password)
    user.is_staff = role == Role.ADMIN
    user.save()
    if not Group.objects.filter(name=role).exists():
        roles_sync()
    user.groups.add(Group.objects.get(name=role))
    return user
