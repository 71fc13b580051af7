"""OpenAPI names for the serializers nested in views.

Views keep their ``InputSerializer`` and ``OutputSerializer`` inside them (../shared/STYLE.md), so
many share a class name; drf-spectacular would give them one schema component and warn. Each is
named after its view instead: ``CardListCreateApi.InputSerializer`` becomes ``CardListCreateInput``.
"""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import extend_schema_serializer
from rest_framework.views import APIView


def _views(cls=APIView):
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _views(subclass)


def name_nested_serializers() -> None:
    import config.urls  # noqa: F401 (imports every view module)

    for view in _views():
        for attribute, suffix in (("InputSerializer", "Input"), ("OutputSerializer", "Output")):
            serializer = view.__dict__.get(attribute)
            if serializer is not None:
                extend_schema_serializer(component_name=view.__name__.removesuffix("Api") + suffix)(serializer)


class StrictIntegerFieldExtension(OpenApiSerializerFieldExtension):
    """Money and counts are JSON integers (never strings or floats) within their bounds."""

    target_class = "core.fields.StrictIntegerField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = {"type": "integer", "format": "int64", "minimum": field.min_value, "maximum": field.max_value}
        if field.__class__.__name__ == "MoneyField":
            schema["description"] = "fen (1 yuan = 100 fen)"
        return schema


class CurrencyFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "core.fields.CurrencyField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": ["cny"], "readOnly": True}
