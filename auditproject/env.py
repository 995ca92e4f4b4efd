"""Typed access to environment variables, with a registry of every name the settings read.

The registry lets a test check that docker-compose passes every variable the settings read to the
web and worker services, so a new setting cannot be forgotten in production.
"""

import os

from django.core.exceptions import ImproperlyConfigured

READ: dict[str, str] = {}
"""Every variable read through this module, mapped to its one-line description."""


def env_str(name: str, default: str | None, help_text: str) -> str | None:
    """Return the variable `name`, or `default` when it is unset or empty."""
    READ[name] = help_text
    value = os.environ.get(name, "").strip()
    return value if value else default


def env_bool(name: str, default: bool, help_text: str) -> bool:
    """Return a boolean variable; accepts 1/0, true/false, yes/no, on/off."""
    raw = env_str(name, None, help_text)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}")


def env_int(name: str, default: int, help_text: str) -> int:
    """Return an integer variable, refusing anything that is not a whole number."""
    raw = env_str(name, None, help_text)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def env_list(name: str, default: list[str], help_text: str) -> list[str]:
    """Return a comma-separated list variable without empty items."""
    raw = env_str(name, None, help_text)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]
