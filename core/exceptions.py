"""The one exception handler of the API: every error becomes ``{"code", "detail"}`` (plus
``errors`` on a 400, and ``rule`` and ``basis`` on a refusal under a rules-profile rule), in the
request's language, and nothing a client sends becomes a 500.

An outage of the database or the broker (a dropped connection, a server restarting) is not a bug:
it answers 503 ``service_unavailable`` with ``Retry-After``, so a client retries the request (with
its ``Idempotency-Key``) instead of taking a 500 for a defect."""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerOperationalError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from core.errors import DomainError
from core.rules import Rule

log = logging.getLogger(__name__)

# The database or the broker did not answer: the request may succeed when retried.
OUTAGES = (OperationalError, InterfaceError, BrokerOperationalError)
RETRY_AFTER_SECONDS = 2

# DRF's own default codes mapped to the API's stable codes.
_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error details as ``{"field.sub": ["message", ...]}``."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for name, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else str(name)))
        return out
    if isinstance(detail, list):
        if any(isinstance(item, (dict, list)) for item in detail):
            out = {}
            for index, item in enumerate(detail):
                out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
            return out
        return {prefix or "non_field_errors": [str(item) for item in detail]}
    return {prefix or "non_field_errors": [str(detail)]}


def _body(
    code: str,
    detail: Any,
    errors: dict[str, list[str]] | None = None,
    rule: Rule | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "detail": str(detail)}
    if errors is not None:
        body["errors"] = errors
    if reason is not None:
        body["reason"] = reason
    if rule is not None:
        body["rule"] = rule.key
        body["basis"] = rule.basis(get_language())
    return body


def _unavailable(exc: BaseException) -> dict[str, Any]:
    log.warning("service unavailable (%s): %s", type(exc).__name__, exc)
    return _body("service_unavailable", _("The service is briefly unavailable; please try again in a moment."))


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, OUTAGES):
        set_rollback()
        return Response(
            _unavailable(exc),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    if isinstance(exc, DomainError):
        errors = None
        if exc.status_code == status.HTTP_400_BAD_REQUEST:
            errors = exc.errors or {"non_field_errors": [str(exc.detail)]}
        set_rollback()
        return Response(_body(exc.code, exc.detail, errors, exc.rule, exc.reason), status=exc.status_code)

    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.messages)

    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django log it and answer 500

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()

    if isinstance(exc, exceptions.ValidationError):
        body = _body("invalid", _("The request is invalid."), _flatten(exc.detail))
        return Response(body, status=status.HTTP_400_BAD_REQUEST, headers=headers)

    code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), None)
    if code is None:
        code = exc.default_code if isinstance(exc.default_code, str) else "error"
    detail = exc.detail if not isinstance(exc.detail, (dict, list)) else exc.default_detail
    errors = {"non_field_errors": [str(detail)]} if exc.status_code == status.HTTP_400_BAD_REQUEST else None
    return Response(_body(code, detail, errors), status=exc.status_code, headers=headers)


def _is_page(request) -> bool:
    """A request for a web page (not the API, the health checks or the admin) gets an HTML error."""
    return not request.path.startswith(("/api/", "/healthz", "/livez", "/admin/"))


def json_not_found(request, exception=None):
    """handler404: unknown URLs answer in the API's error shape; pages get a page."""
    if _is_page(request):
        from django.shortcuts import render

        return render(request, "404.html", status=404)
    return JsonResponse(_body("not_found", _("Not found.")), status=404)


def page_forbidden(request, exception=None):
    """handler403: a page another role may not see (the API answers 403 through DRF)."""
    if _is_page(request):
        from django.shortcuts import render

        return render(request, "403.html", status=403)
    return JsonResponse(_body("permission_denied", _("You do not have permission to perform this action.")), status=403)


def json_server_error(request) -> JsonResponse:
    """handler500: even a bug answers in the API's shape, never an HTML page; an outage met outside
    the API's views (a middleware reading the session) is a 503, as in them."""
    exc = sys.exc_info()[1]
    if isinstance(exc, OUTAGES):
        response = JsonResponse(_unavailable(exc), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    return JsonResponse(_body("server_error", _("An internal error occurred; it has been logged.")), status=500)


def json_bad_request(request, exception=None) -> JsonResponse:
    """handler400: e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE or a disallowed host."""
    return JsonResponse(_body("malformed_request", _("The request could not be read."), {}), status=400)
