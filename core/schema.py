"""OpenAPI names for the serializers nested in views.

Views keep their ``InputSerializer`` and ``OutputSerializer`` inside them (../shared/STYLE.md), so
many share a class name; drf-spectacular would give them one schema component and warn. Each is
named after its view instead: ``CardListCreateApi.InputSerializer`` becomes ``CardListCreateInput``.
"""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_serializer
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from core.formatting import CURRENCY


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
        return {"type": "string", "enum": [CURRENCY], "readOnly": True}


class ApiAutoSchema(AutoSchema):
    """Documents, on every operation, the responses the API's shared machinery gives rather than
    the view itself (../shared/API.md, Conventions), so no client meets an undocumented status:

    - a list (a GET answering many items) is a page, ``{"count", "next", "previous", "results"}``,
      as ``core.api.paginated_response`` writes it, with its ``page`` parameter; a page past the end
      is 404 ``not_found``;
    - an operation with a request body answers 400 to a body that is not valid JSON (the strict
      parser) or not valid input;
    - an operation behind authentication answers 401 to no credentials or an unknown token;
    - an operation behind a role gate answers 403 to another role;
    - an operation with a request body answers 415 to a body that is not JSON;
    - an operation that honours ``Idempotency-Key`` (``core.idempotency.idempotent``) documents the
      header, and answers 400 ``invalid_idempotency_key`` and 409 ``idempotency_key_reused``.

    What a view states itself (its own 400 or 404 descriptions) is kept.
    """

    def _get_paginator(self):
        paginator = super()._get_paginator()
        if paginator is None and self.method == "GET":
            from rest_framework.settings import api_settings

            return api_settings.DEFAULT_PAGINATION_CLASS()
        return paginator

    def _is_idempotent(self) -> bool:
        from core.idempotency import idempotent

        handler = getattr(self.view, self.method.lower(), None)
        code = getattr(getattr(handler, "__func__", handler), "__code__", None)
        return code is not None and code is idempotent(lambda *args, **kwargs: None).__code__

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self._is_idempotent():
            parameters.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    str,
                    OpenApiParameter.HEADER,
                    pattern=r"^[ -~]{1,255}$",
                    description="1-255 printable ASCII characters: the same key, caller and body within 24 h "
                    "replay the first response (with the header Idempotent-Replayed: true).",
                )
            )
        return parameters

    def _get_response_bodies(self, direction="response"):
        from core.api import ErrorSerializer

        responses = super()._get_response_bodies(direction)
        shared = {}
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        if has_body:
            shared["400"] = "invalid, malformed_request (the body is not valid JSON)"
        if self._is_idempotent():
            shared.setdefault("400", "invalid_idempotency_key")
            shared["409"] = "idempotency_key_reused (the same key with another body)"
        if has_body and self.view.get_parsers():
            shared["415"] = "unsupported_media_type (the body is not application/json)"
        if self.view.get_authenticators():
            shared["401"] = "not_authenticated (no credentials), authentication_failed (an unknown token)"
        if any(not isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            shared["403"] = "permission_denied (the caller's role may not do this)"
        if self.method == "GET" and self._is_list_view():
            shared["404"] = "not_found (a page past the last one)"
        for code, description in shared.items():
            if code not in responses:
                response = OpenApiResponse(ErrorSerializer, description=description)
                responses[code] = self._get_response_for_code(response, code, direction=direction)
        return dict(sorted(responses.items()))
