"""Login rate limiting: after too many failed logins for one username from one address, refuse for a while.

Counts live in Django's cache (Redis when AUDIT_CACHE_URL is set, so every web worker shares them). The
HTML login page answers 429 with a message, the token endpoint 429 with `Retry-After`. Behind a proxy,
the address is REMOTE_ADDR as the WSGI server sets it.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache


def _key(request, username: str) -> str:
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:{name}:{request.META.get('REMOTE_ADDR', '') or 'unknown'}"


def login_is_locked(*, request, username: str) -> bool:
    """Whether logins for `username` from this client are refused for now."""
    return (cache.get(_key(request, username)) or 0) >= settings.AUDIT_LOGIN_FAILURE_LIMIT


def login_failure_record(*, request, username: str) -> None:
    """Count one failed login for `username` from this client; the count expires after the lockout time."""
    key = _key(request, username)
    cache.add(key, 0, timeout=settings.AUDIT_LOGIN_LOCKOUT_SECONDS)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.AUDIT_LOGIN_LOCKOUT_SECONDS)


def login_success_clear(*, request, username: str) -> None:
    """Forget the failed logins of `username` from this client after it logged in."""
    cache.delete(_key(request, username))
