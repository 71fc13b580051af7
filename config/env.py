"""Typed reads of the process environment.

Every setting that comes from the environment is read through these helpers, which record the
variable's name in ``READ``. The docker-compose test compares the variables the compose file sets
with this registry, so a setting can never be configured in one place and ignored in the other.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

READ: dict[str, str] = {}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, doc: str = "") -> str:
    READ[name] = doc
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"environment variable {name} is required")
        return default
    return value


def env_bool(name: str, default: bool, *, doc: str = "") -> bool:
    raw = env_str(name, "1" if default else "0", doc=doc).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false, got {raw!r}")


def env_int(name: str, default: int, *, doc: str = "") -> int:
    raw = env_str(name, str(default), doc=doc)
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: str, *, doc: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default, doc=doc).split(",") if item.strip()]
