"""The pages' shared plumbing: log in and out, the sign-up page (its forms and services are the
consumers' and merchants'), the role gate, and running a service from a form so that its domain
error becomes a message on the page instead of an error page.

Logging in takes one step for consumers and merchants and two for regulators: after the password,
the login page keeps only "this user, waiting for a code" in the session (for
``LOGIN_CODE_SECONDS``), and the code page logs the user in once ``second_factor_verify`` accepts
the authenticator's code; the session is then verified (django-otp), which regulators' pages need
(``core.middleware.RegulatorSessionMiddleware``).

Pages call the same services as the API; only the way an error reaches the person differs.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from core import clock, services
from core.errors import DomainError, TooManyLoginAttempts
from core.idempotency import caller_of, service_key
from core.models import User
from core.qr import qr_svg

HOME_OF_ROLE = {
    User.Role.CONSUMER: "web-consumer-cards",
    User.Role.MERCHANT: "web-merchant-home",
    User.Role.REGULATOR: "web-regulator-dashboard",
}


def role_required(role: str) -> Callable:
    """Only logged-in users of ``role`` reach the page: others are sent to log in, or get 403."""

    def decorate(view: Callable) -> Callable:
        @login_required
        @wraps(view)
        def wrapper(request, *args: Any, **kwargs: Any):
            if request.user.role != role:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


def form_idempotency_key(request, *, form: str, token: str | None) -> str | None:
    """The service's idempotency key for one rendering of a page's form (``token``, hidden in it):
    a form sent twice, by a double click or a resent page, is acted on once."""
    return service_key(caller=caller_of(request.user), key=f"web-{form}:{token}") if token else None


class OnceForm(forms.Form):
    """A form whose service is run once however often the same rendering is sent with the same
    content: each rendering carries a fresh hidden ``submission`` token, which ``idempotency_key``
    turns, with the content, into the service's key. (Sent again after going back and changing a
    field, it is another request, and acts.)"""

    submission = forms.RegexField(
        regex=r"^[0-9a-f]{32}$", required=False, widget=forms.HiddenInput, initial=lambda: uuid.uuid4().hex
    )

    @property
    def content(self) -> dict[str, Any]:
        """The cleaned fields the person filled in (without the token)."""
        return {name: value for name, value in self.cleaned_data.items() if name != "submission"}

    def idempotency_key(self, request, *, form: str) -> str | None:
        token = self.cleaned_data.get("submission")
        if not token:
            return None
        digest = hashlib.sha256(json.dumps(self.content, sort_keys=True, default=str).encode()).hexdigest()
        return form_idempotency_key(request, form=form, token=f"{token}:{digest}")


def next_url(request, default: str) -> str:
    """Where a form asked to go back to (``next``, posted or in the query; a path on this site only,
    https when the request is), else ``default``."""
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return wanted
    return default


def attempt(request, call: Callable[[], Any], *, success: str | None = None, form: forms.Form | None = None):
    """Run a service for a page. On a domain error the person sees its text (and the form its field
    errors) and ``None`` is returned; on success the optional ``success`` message is shown."""
    try:
        result = call()
    except DomainError as exc:
        if form is not None and exc.errors:
            for field, errors in exc.errors.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        messages.error(request, str(exc.detail))
        return None
    if success:
        messages.success(request, success)
    return result


def home(request):
    if not request.user.is_authenticated:
        return redirect("web-login")
    return redirect(HOME_OF_ROLE.get(request.user.role, "web-login"))


# 长辈版 (large text, high contrast): a long-lived cookie, so that it outlasts the session and a
# log-out; templates/base.html reads it and puts ``class="elder"`` on <html> for consumers and
# visitors.
ELDER_COOKIE = "elder"
ELDER_MAX_AGE = 10 * 365 * 24 * 3600


@require_POST
def elder_mode(request):
    """Turn 长辈版 on (``on=1``) or off (anything else), then go back to ``next``."""
    response = redirect(next_url(request, default="/"))
    if request.POST.get("on") == "1":
        response.set_cookie(
            ELDER_COOKIE, "1", max_age=ELDER_MAX_AGE, samesite="Lax", httponly=True, secure=request.is_secure()
        )
    else:
        response.delete_cookie(ELDER_COOKIE, samesite="Lax")
    return response


# Debug mode only: what the login pages may show to sign in to a local demo (the demo registers
# its regulator's authenticator in demo.apps). Each hint answers ``{"username", "uri"}`` or None.
_DEBUG_LOGIN_HINTS: list[Callable[[], dict[str, str] | None]] = []


def login_debug_hint_register(hint: Callable[[], dict[str, str] | None]) -> None:
    """Show ``hint()``'s account and its authenticator's ``otpauth://`` URI (with a QR code) on the
    login pages while ``DEBUG`` is on; never otherwise."""
    if hint not in _DEBUG_LOGIN_HINTS:
        _DEBUG_LOGIN_HINTS.append(hint)


def login_debug_hints() -> list[dict[str, Any]]:
    if not settings.DEBUG:
        return []
    shown = []
    for hint in _DEBUG_LOGIN_HINTS:
        found = hint()
        if found:
            label = _("QR code of the authenticator of %(username)s") % {"username": found["username"]}
            shown.append({**found, "qr": qr_svg(found["uri"], label=label, size_px=200)})
    return shown


LOGIN_PENDING_KEY = "login_pending"  # {"user", "backend", "at", "next"}: the password passed, a code is due
LOGIN_CODE_SECONDS = 300  # how long the code page waits after the password


class LoginView(auth_views.LoginView):
    """The password step. A user who needs a second factor is not logged in yet: the code page is next."""

    template_name = "core/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        if not user.needs_second_factor:
            return super().form_valid(form)
        self.request.session[LOGIN_PENDING_KEY] = {
            "user": user.pk,
            "backend": user.backend,
            "at": clock.now().timestamp(),
            "next": self.get_redirect_url(),
        }
        return redirect("web-login-code")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "debug_hints": login_debug_hints()}


class LoginCodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=16,
        help_text=gettext_lazy("The 6 digits the app shows now; a new code every 30 seconds, each usable once."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "size": 8}
        ),
    )


def _login_pending(request) -> tuple[User | None, dict[str, Any]]:
    """The user whose password passed on this browser less than ``LOGIN_CODE_SECONDS`` ago, if any."""
    pending = request.session.get(LOGIN_PENDING_KEY)
    if not isinstance(pending, dict):
        return None, {}
    if clock.now().timestamp() - pending.get("at", 0) > LOGIN_CODE_SECONDS:
        del request.session[LOGIN_PENDING_KEY]
        messages.info(request, _("The code was not entered in time. Enter your password again."))
        return None, {}
    user = User.objects.filter(pk=pending.get("user"), is_active=True).first()
    return user, pending


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_code(request):
    """The second step of a regulator's login: the authenticator's current code."""
    user, pending = _login_pending(request)
    if user is None:
        return redirect("web-login")
    form = LoginCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        device = attempt(request, lambda: services.second_factor_verify(request=request, user=user, code=code))
        if device is not None:
            del request.session[LOGIN_PENDING_KEY]
            login(request, user, backend=pending["backend"])
            otp_login(request, device)
            return redirect(pending.get("next") or resolve_url(settings.LOGIN_REDIRECT_URL))
        if getattr(request, "axes_locked_out", False):
            del request.session[LOGIN_PENDING_KEY]  # locked out: the password again, once the lockout ends
        form = LoginCodeForm()  # an empty field for the next code
    context = {"form": form, "username": user.get_username(), "debug_hints": login_debug_hints()}
    return render(request, "core/login_code.html", context)


def client_ip(request) -> str | None:
    """The client's address, as the login throttle counts it (``AXES_CLIENT_IP_CALLABLE``).

    With no trusted proxy (``TRUSTED_PROXY_COUNT=0``) it is the connection's. Behind ``n`` proxies,
    each appending the address it was reached from to ``X-Forwarded-For``, it is the ``n``-th
    address from the right: the one the outermost proxy saw. Whatever a client wrote to the left
    of it is ignored. A request with fewer addresses than proxies did not come through them all,
    and is counted by its connection's address, as is one whose address does not parse.
    """
    remote = request.META.get("REMOTE_ADDR")
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-hops]))
    except ValueError:
        return remote


def login_lockout_response(request, original_response=None, credentials=None):
    """What a login refused by the throttle answers (django-axes' ``AXES_LOCKOUT_CALLABLE``).

    The API's token view has already answered 429 ``too_many_login_attempts`` through the error
    handler (``core.services.auth_token_issue``), so that answer is kept; a page gets the login
    form again, with the reason, and 429.
    """
    if request.path.startswith("/api/"):
        if original_response is not None and original_response.status_code == TooManyLoginAttempts.status_code:
            return original_response
        error = TooManyLoginAttempts()
        return JsonResponse({"code": error.code, "detail": str(error.detail)}, status=error.status_code)
    messages.error(request, str(TooManyLoginAttempts.default_detail))
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    context = {"form": form, "next": request.POST.get("next", "")}
    return render(request, LoginView.template_name, context, status=TooManyLoginAttempts.status_code)


class LogoutView(auth_views.LogoutView):
    next_page = "web-login"


def signup_page(request, *, role: str, form_class: type[forms.Form], register: Callable[..., Any]):
    """A sign-up page: the form's cleaned fields go to the role's ``register`` service, whose new
    profile's user is then logged in. The consumers' and merchants' pages bring their form and service."""
    form = form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        created = attempt(request, lambda: register(**form.cleaned_data), form=form)
        if created is not None:
            login(request, created.user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("web-home")
    return render(request, "core/signup.html", {"form": form, "role": role})
