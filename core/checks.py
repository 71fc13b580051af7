"""System checks: every rules profile shipped in core/profiles/ is valid (``manage.py check``).

The active profile is checked earlier still, when the settings load (a broken one stops every
start-up); this check also catches a broken profile that this deployment does not use.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from core.rules import ProfileInvalid, profile_load, shipped_profiles


@register("rules")
def rules_profiles_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for path in shipped_profiles():
        try:
            profile_load(path)
        except ProfileInvalid as exc:
            messages.append(
                Error(str(exc), hint="Fix the file; README 'Rules profiles' shows the layout.", id="core.E101")
            )
    return messages
