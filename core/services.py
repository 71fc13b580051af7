"""Writes of the shared plumbing: users, API tokens, heartbeats."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from rest_framework.authtoken.models import Token

from core import clock
from core.errors import InvalidCredentials, InvalidInput, TooManyLoginAttempts
from core.models import User, WorkerHeartbeat


def user_create(*, username: str, password: str, role: str, email: str = "") -> User:
    """Create a user of ``role``; the password must pass Django's validators.

    The name is checked as it will be stored: ``create_user`` stores it NFKC-normalized, so "µ"
    (micro sign) and "μ" (Greek mu) are one name. Checked as sent, a second registration of such a
    name passed the check and failed on the unique constraint, a 500 (found by the schema fuzz).
    """
    username = User.normalize_username(username)
    taken = InvalidInput(errors={"username": ["A user with that username already exists."]})
    if User.objects.filter(username=username).exists():
        raise taken
    try:
        validate_password(password, user=User(username=username))
    except DjangoValidationError as exc:
        raise InvalidInput(errors={"password": list(exc.messages)}) from exc
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, password=password, role=role, email=email)
    except IntegrityError as exc:  # registered meanwhile by another request
        raise taken from exc


def auth_token_issue(*, request: HttpRequest, username: str, password: str) -> str:
    """The API token of the user with these credentials (created on first use).

    ``request`` lets the login throttle (django-axes) count the attempt against this username and
    client address, and refuse it while they are locked out.
    """
    # As user_create stored it: the name logs in however its characters were typed.
    user = authenticate(request, username=User.normalize_username(username), password=password)
    if getattr(request, "axes_locked_out", False):
        raise TooManyLoginAttempts()
    if user is None or not user.is_active:
        raise InvalidCredentials()
    # A token is a login: last_login is kept, and the throttle forgets this user's earlier failures.
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def heartbeat_record(*, name: str) -> None:
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"last_seen": clock.now()})
