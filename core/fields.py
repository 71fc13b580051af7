"""Serializer fields that keep money an integer number of fen."""

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.formatting import CURRENCY

# 10^15 fen (10 trillion yuan) is far above any real amount and well inside both a PostgreSQL
# bigint and a JavaScript client's exact integers (2^53).
MAX_FEN = 10**15


class StrictIntegerField(serializers.Field):
    """An integer that must arrive as a JSON integer: no floats (not even ``12.0``), no strings,
    no booleans, and within bounds."""

    default_error_messages = {
        "invalid": _("A whole number is required."),
        "min_value": _("Ensure this value is greater than or equal to {min_value}."),
        "max_value": _("Ensure this value is less than or equal to {max_value}."),
    }

    def __init__(self, *, min_value: int = 0, max_value: int = MAX_FEN, **kwargs: Any) -> None:
        self.min_value = min_value
        self.max_value = max_value
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        if data < self.min_value:
            self.fail("min_value", min_value=self.min_value)
        if data > self.max_value:
            self.fail("max_value", max_value=self.max_value)
        return data

    def to_representation(self, value: int) -> int:
        return int(value)


class MoneyField(StrictIntegerField):
    """An amount in fen."""

    default_error_messages = {
        "invalid": _("Amounts are a whole number of fen (1 yuan = 100 fen), not a fraction or a string."),
    }


class CurrencyField(serializers.Field):
    """``"currency": "cny"`` beside every amount (API.md): money on this platform is always yuan."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance: Any) -> str:
        return CURRENCY

    def to_representation(self, value: str) -> str:
        return value
