"""Output serializers whose fast path is derived from their declared fields.

A DRF serializer deep-copies its declared fields every time it is instantiated, which was the largest
Python cost of the hot card and redemption responses (bench/flow.py). ``DeclaredSerializer`` keeps
the fields as the one declaration (the schema documents them; their names, order, sources and types
make the output) and, once per class, turns them into a plan: for each field its name, a getter and
a conversion. ``to_representation`` then runs the plan, giving what DRF's own ``to_representation``
gives for the same fields:

- a field's value is read from its ``source`` (``"a.b"`` follows the attributes; ``"*"`` is the
  instance); a field that overrides ``get_attribute`` (``CurrencyField``) is asked instead;
- ``None`` stays ``None``, as in DRF; otherwise ``CharField`` is ``str``, ``IntegerField`` is
  ``int`` and every other field (dates, choices, method fields, nested serializers, which are
  ``DeclaredSerializer``s themselves when they are hot) converts through its own bound instance.

Fields are bound to one prototype instance of the class, so a field that needs the serializer's
``context`` (the request) has no place here: use a plain ``Serializer`` for such output.
"""

from collections.abc import Callable
from operator import attrgetter
from typing import Any, ClassVar

from rest_framework import fields, serializers

_Step = tuple[str, Callable[[Any], Any], Callable[[Any], Any]]

# Conversions DRF's fields perform, taken without a method call where it is exactly the same.
_PLAIN = {fields.CharField: str, fields.IntegerField: int}


def _identity(value: Any) -> Any:
    return value


def _step(name: str, field: fields.Field) -> _Step:
    if type(field).get_attribute is not fields.Field.get_attribute:
        get = field.get_attribute
    elif field.source_attrs:
        get = attrgetter(".".join(field.source_attrs))
    else:
        get = _identity  # source="*": the instance itself
    return name, get, _PLAIN.get(type(field), field.to_representation)


class DeclaredSerializer(serializers.Serializer):
    """A read-only output serializer whose representation is planned from its declared fields."""

    _plan: ClassVar[tuple[_Step, ...]]

    @classmethod
    def representation_plan(cls) -> tuple[_Step, ...]:
        plan = cls.__dict__.get("_plan")
        if plan is None:
            prototype = cls()
            plan = tuple(_step(name, field) for name, field in prototype.fields.items() if not field.write_only)
            cls._plan = plan
        return plan

    def to_representation(self, instance: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, get, convert in self.representation_plan():
            value = get(instance)
            out[name] = None if value is None else convert(value)
        return out
