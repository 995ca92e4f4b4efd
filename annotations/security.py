"""Login rate limiting: after too many failed logins from one address for one username, refuse for a while.

Counts live in Django's cache (Redis when AUDIT_CACHE_URL is set, so every web worker shares them). The
HTML login page answers 429 with a message, the token endpoint 429 with `Retry-After`.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache


def _client_address(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(username: str, address: str) -> tuple[str, str]:
    name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-fail:{name}:{address}", f"login-fail-ip:{address}"


def login_is_locked(*, request, username: str) -> bool:
    """Whether logins for `username` from this client are refused for now."""
    user_key, address_key = _keys(username, _client_address(request))
    limit = settings.AUDIT_LOGIN_FAILURE_LIMIT
    return (cache.get(user_key) or 0) >= limit or (cache.get(address_key) or 0) >= limit * 5


def login_failure_record(*, request, username: str) -> None:
    """Count one failed login for `username` from this client (and for the client overall)."""
    for key in _keys(username, _client_address(request)):
        cache.add(key, 0, timeout=settings.AUDIT_LOGIN_LOCKOUT_SECONDS)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.AUDIT_LOGIN_LOCKOUT_SECONDS)


def login_success_clear(*, request, username: str) -> None:
    """Forget the failed logins of `username` from this client after it logged in."""
    cache.delete(_keys(username, _client_address(request))[0])
