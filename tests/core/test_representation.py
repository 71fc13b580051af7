"""core.representation: a DeclaredSerializer writes what DRF's own Serializer writes for the same
declared fields (names, order, sources, None, conversions, method fields, nested serializers)."""

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

from rest_framework import serializers

from core.fields import CurrencyField
from core.representation import DeclaredSerializer


class _Inner(DeclaredSerializer):
    id = serializers.CharField()
    secret = serializers.SerializerMethodField()

    def get_secret(self, inner) -> str | None:
        return inner.secret or None


class _Outer(DeclaredSerializer):
    id = serializers.CharField()
    owner = serializers.CharField(source="owner_id")
    state = serializers.ChoiceField(choices=[("active", "Active"), ("closed", "Closed")])
    currency = CurrencyField()
    amount = serializers.IntegerField()
    held = serializers.IntegerField(source="account.balance")
    left = serializers.IntegerField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)
    password = serializers.CharField(write_only=True)
    inner = _Inner()


def _drf(serializer_class, instance) -> dict:
    """The representation DRF's ``Serializer.to_representation`` builds, nested ones included."""
    out = serializers.Serializer.to_representation(serializer_class(instance), instance)
    for name, field in serializer_class().fields.items():
        if isinstance(field, serializers.Serializer):
            out[name] = _drf(type(field), getattr(instance, field.source))
    return out


def _thing(**overrides) -> SimpleNamespace:
    values = {
        "id": uuid.uuid4(),
        "owner_id": 7,
        "state": "active",
        "amount": 12_345,
        "account": SimpleNamespace(balance=100),
        "left": None,
        "at": datetime(2026, 3, 2, 3, 4, 5, tzinfo=UTC),
        "password": "never shown",
        "inner": SimpleNamespace(id=uuid.uuid4(), secret=""),
    }
    return SimpleNamespace(**{**values, **overrides})


def test_a_declared_serializer_writes_what_drf_writes_for_its_fields():
    for thing in (_thing(), _thing(left=3, at=None, state="closed", inner=SimpleNamespace(id=1, secret="s"))):
        written = _Outer(thing).data
        assert written == _drf(_Outer, thing)
        assert list(written) == ["id", "owner", "state", "currency", "amount", "held", "left", "at", "inner"]
        assert written["at"] in (None, "2026-03-02T11:04:05+08:00")


def test_a_list_is_written_item_by_item():
    things = [_thing(), _thing(left=1)]
    assert _Outer(things, many=True).data == [_drf(_Outer, thing) for thing in things]
