"""Audiences of fan-outs: who an event reaches, registered by the apps that know (like outbox topics).

An app above registers, in its ``AppConfig.ready``::

    audience_register("card_holders", page=holders_after, count=holders_count)

``page(arg, after, limit)`` returns up to ``limit`` user ids greater than ``after``, ascending (a
stable order, so a cursor resumes a walk); ``count(arg)`` how many there are now (the progress's
total). ``arg`` is a string the fan-out carries (a merchant's id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Audience:
    page: Callable[[str, int, int], list[int]]
    count: Callable[[str], int]


AUDIENCES: dict[str, Audience] = {}


def audience_register(name: str, *, page: Callable[[str, int, int], list[int]], count: Callable[[str], int]) -> None:
    AUDIENCES[name] = Audience(page=page, count=count)


def audience_get(name: str) -> Audience:
    try:
        return AUDIENCES[name]
    except KeyError:
        raise ValueError(f"no audience registered as {name!r}") from None
