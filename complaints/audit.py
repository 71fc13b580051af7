"""The audit log complaints' decisions go to (a hotline entry, a response, a close).

The log is the regulator's (``regulator.services.audit``, a floor above): the regulator registers its
writer here when Django starts (``RegulatorConfig.ready``), so complaints never import it. The writer
runs in the caller's transaction: the line and the decision commit, or vanish, together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_writer: Callable[..., Any] | None = None


def audit_writer_register(writer: Callable[..., Any]) -> None:
    """Set the function decisions are written through (keyword arguments as ``audit_record``'s)."""
    global _writer
    _writer = writer


def audit_record(**line: Any) -> Any:
    """Write one line of the audit log through the registered writer."""
    if _writer is None:
        raise ImproperlyConfigured("no audit log writer registered (is the regulator app installed?)")
    return _writer(**line)
