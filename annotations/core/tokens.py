"""API tokens that a copy of the database does not give away.

A token's secret is 32 random bytes (`secrets.token_urlsafe`), shown once when it is made; the database
keeps only its SHA-256 digest (a fast hash is enough for a secret with 256 bits of entropy: there is
nothing to guess, unlike a password), the first characters to recognise it, a name, an expiry
(AUDIT_API_TOKEN_DAYS, 90 by default) and when it was last used. A user may hold several (one per
script); they and admins list and revoke them (the page /account/tokens/, `GET /api/auth/tokens/`,
`DELETE /api/auth/tokens/ID/`, the Django admin). Requests send `Authorization: Token <secret>` as with
DRF's plain tokens, which this replaces (migration 0013 hashes the old keys, then drops their table).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from annotations.core import prepared
from annotations.core.audit import audit_event_record
from annotations.core.exceptions import AuditError, NotFoundError
from annotations.core.roles import access_remember, access_sql, user_is_admin
from annotations.models import ApiToken

MAX_NAME_CHARS = 100
LAST_USED_EVERY = timedelta(minutes=1)  # a token's last use is written at most once a minute


def token_digest(secret: str) -> str:
    """The stored form of a secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def token_issue(
    *, user, name: str = "api", days: int | None = None, rotate: bool = False, actor=None
) -> tuple[ApiToken, str]:
    """Make a token for `user`; returns it and its secret (the only time the secret exists).

    `rotate` revokes the user's other live tokens in the same transaction. `days` defaults to
    AUDIT_API_TOKEN_DAYS; AuditError naming the field for a bad name or number of days.
    """
    name = (name or "").strip() or "api"
    if len(name) > MAX_NAME_CHARS or any(ord(c) < 32 for c in name):
        message = f"name must be 1 to {MAX_NAME_CHARS} printable characters"
        raise AuditError(message, errors=[{"field": "name", "message": message}])
    days = settings.AUDIT_API_TOKEN_DAYS if days is None else days
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
        message = f"days must be a whole number from 1 to 3650, got {days!r}"
        raise AuditError(message, errors=[{"field": "days", "message": message}])
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        if rotate:
            ApiToken.objects.filter(user=user, revoked_at=None).update(revoked_at=now)
        token = ApiToken.objects.create(
            user=user,
            name=name,
            digest=token_digest(secret),
            prefix=secret[:8],
            expires_at=now + timedelta(days=days),
        )
        audit_event_record(
            actor=actor or user, action="token.create", target=token,
            details={"user": user.pk, "name": name, "days": days, "rotate": rotate},
        )  # fmt: skip
    return token, secret


def tokens_of(*, user) -> list[ApiToken]:
    """The user's tokens, newest first (revoked and expired ones included, marked by their fields)."""
    return list(ApiToken.objects.filter(user=user).order_by("-created_at", "-pk"))


def token_revoke(*, token_id: int, actor) -> ApiToken:
    """Revoke a token of `actor`'s, or anyone's for an admin; NotFoundError otherwise (no hint it exists)."""
    tokens = ApiToken.objects.all() if user_is_admin(actor) else ApiToken.objects.filter(user=actor)
    with transaction.atomic():
        token = tokens.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise NotFoundError(f"Token {token_id} does not exist.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_event_record(
                actor=actor, action="token.revoke", target=token, details={"user": token.user_id}
            )
    return token


@cache
def _token_statement() -> prepared.Statement:
    """The token with this digest, its user, and the user's roles and permissions, in one round trip.

    Every API request authenticates, so this runs on every labelling call: compiling the ORM query
    (`select_related("user")`) and a second query for the roles cost about as much as the rest of a
    "next item" request (bench/bench_next_item.py --profile, issue #16). One row per role or
    permission (one row with NULLs when there are none); prepared on PostgreSQL.
    """
    user = get_user_model()
    token_table = ApiToken._meta.db_table
    user_id = f"(SELECT user_id FROM {token_table} WHERE digest = %(digest)s)"  # noqa: S608
    columns = f"{prepared.model_columns(ApiToken, 't')}, {prepared.model_columns(user, 'u')}"
    sql = f"""SELECT {columns}, a.app, a.name
FROM {token_table} t JOIN {user._meta.db_table} u ON u.id = t.user_id
LEFT JOIN ({access_sql(user_id)}) a ON 1 = 1
WHERE t.digest = %(digest)s"""  # noqa: S608
    return prepared.Statement("audit_token_access", sql)


def _token_with_access(digest: str) -> ApiToken | None:
    """The token of `digest` with `token.user` loaded and the user's access remembered, or None."""
    with connection.cursor() as cursor:
        _token_statement().execute(cursor, {"digest": digest})
        rows = cursor.fetchall()
    if not rows:
        return None
    n_token = len(ApiToken._meta.concrete_fields)
    n_user = len(get_user_model()._meta.concrete_fields)
    token = prepared.model_instance(ApiToken, rows[0][:n_token])
    token.user = prepared.model_instance(get_user_model(), rows[0][n_token : n_token + n_user])
    access_remember(token.user, [row[n_token + n_user :] for row in rows])
    return token


class HashedTokenAuthentication(TokenAuthentication):
    """DRF authentication by `Authorization: Token <secret>`, looked up by the secret's digest.

    401 for an unknown, revoked or expired token or an inactive user (one message each, none saying
    whether another token exists).
    """

    def authenticate_credentials(self, key):
        token = _token_with_access(token_digest(key))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed("Token expired: make a new one.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if token.last_used_at is None or token.last_used_at < now - LAST_USED_EVERY:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
