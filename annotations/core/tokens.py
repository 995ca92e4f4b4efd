"""API tokens."""

from rest_framework.authtoken.models import Token


def token_issue(*, user, rotate: bool = False) -> Token:
    """The user's API token, created if missing; `rotate` replaces an existing one (the old stops working)."""
    if rotate:
        Token.objects.filter(user=user).delete()
    token, _ = Token.objects.get_or_create(user=user)
    return token
