"""Middleware of the platform's own."""

from __future__ import annotations

from core.exceptions import json_not_found


class ApiNotFoundMiddleware:
    """An unknown URL under ``/api/`` answers in the API's error shape in debug mode too: Django
    renders its own HTML page for an unrouted path when ``DEBUG`` is on, without ``handler404``."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return json_not_found(request)
        return response
