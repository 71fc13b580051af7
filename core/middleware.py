"""Middleware of the platform's own."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _

from core import clock
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


LAST_SEEN_KEY = "last_seen"  # a regulator's session: the time of its last request (POSIX seconds)


class RegulatorSessionMiddleware:
    """A regulator's session holds only after both factors, and not for long idle.

    - A session of a user who needs a second factor (``User.needs_second_factor``) that has not
      passed it (django-otp's ``is_verified()``, set by the login page's code step) is ended before
      the view runs: the request goes on as anonymous, so a page sends it to log in and the API
      answers 401, whatever path logged the user in with a password alone.
    - A regulator's session with no request for ``REGULATOR_SESSION_IDLE_MINUTES`` ends (logged out,
      with the reason in the audit log and on the login page); every request counts as activity.

    Installed after django-otp's ``OTPMiddleware`` and Django's ``MessageMiddleware``.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.needs_second_factor:
            self._check(request, user)
        return self.get_response(request)

    @staticmethod
    def _check(request, user) -> None:
        if not getattr(user, "is_verified", lambda: False)():
            request.session.flush()
            request.user = AnonymousUser()
            return
        now = clock.now().timestamp()
        last_seen = request.session.get(LAST_SEEN_KEY)
        idle = settings.REGULATOR_SESSION_IDLE_MINUTES
        if isinstance(last_seen, int | float) and now - last_seen > idle * 60:
            request.session_end_reason = "idle"  # for the audit log's receiver of user_logged_out
            logout(request)
            messages.info(
                request,
                _("You were signed out after %(minutes)s minutes without activity. Sign in again.") % {"minutes": idle},
            )
            return
        request.session[LAST_SEEN_KEY] = now
