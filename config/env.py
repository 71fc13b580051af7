"""Typed reads of the process environment.

Every setting that comes from the environment is read through these helpers, which record the
variable's name in ``READ``. The docker-compose test compares the variables the compose file sets
with this registry, so a setting can never be configured in one place and ignored in the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

READ: dict[str, str] = {}

# Names a checkout's own ``var/local.env`` may set: what a newcomer's ``manage.py`` needs to run
# as README shows it after ``make run``. Nothing else is taken from that file.
LOCAL_NAMES = frozenset({"DJANGO_DEBUG", "DJANGO_SECRET_KEY"})


def local_env_path() -> Path:
    """``var/local.env`` of this checkout (or of ``VAR_DIR``), written once by ``make setup``."""
    base = Path(__file__).resolve().parent.parent / "var"
    return Path(os.environ.get("VAR_DIR") or base) / "local.env"


def _read_local_env() -> dict[str, str]:
    """The checkout's local settings: ``NAME=value`` lines of ``LOCAL_NAMES``, read only when the
    environment says nothing of debug mode (a deployment sets ``DJANGO_DEBUG=0``, ``make`` sets 1)
    and never over a variable the environment sets. An image has no such file (the Dockerfile
    empties ``var/``); it exists so that ``manage.py`` works in a developer's clone."""
    if "DJANGO_DEBUG" in os.environ:
        return {}
    try:
        lines = local_env_path().read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name.strip() in LOCAL_NAMES:
            found[name.strip()] = value.strip()
    return found


LOCAL = _read_local_env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None, *, doc: str = "") -> str:
    READ[name] = doc
    value = os.environ.get(name, LOCAL.get(name))
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


def database_config(url: str, *, conn_max_age: int) -> dict:
    """Django's ``DATABASES`` entry for ``url``, as ``dj_database_url`` reads it, and also a libpq
    multi-host URL (``postgres://user@host1:5432,host2:5432/name?target_session_attrs=read-write``):
    libpq tries the hosts in order and keeps the first that answers as asked, so after a failover
    new connections find the promoted standby."""

    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return dj_database_url.parse(url, conn_max_age=conn_max_age)
    first = hosts.split(",")[0]
    config = dj_database_url.parse(
        parts._replace(netloc=f"{credentials}@{first}" if credentials else first, query="").geturl(),
        conn_max_age=conn_max_age,
    )
    pairs = [host.rpartition(":") if ":" in host else (host, "", "5432") for host in hosts.split(",")]
    config["HOST"] = ",".join(host for host, _, _ in pairs)
    config["PORT"] = ",".join(port for _, _, port in pairs)
    config.setdefault("OPTIONS", {}).update(dict(parse_qsl(parts.query)))
    return config
