"""Writes of the shared plumbing: users, their second factor, API tokens, heartbeats.

Regulators sign in with two factors (``User.needs_second_factor``): the password, then the current
code of a TOTP authenticator (RFC 6238: SHA-1, 6 digits, 30-second steps; django-otp's
``TOTPDevice``, one per user). ``user_totp_set`` gives a user the authenticator's secret and
answers its ``otpauth://`` URI; ``second_factor_verify`` checks a code for the token API and the
login page alike. A code is taken once: the device remembers the last time step it accepted, so
the same code sent again in its 30 seconds is refused. Every refusal is a failed login for the
login throttle and the audit log (Django's ``user_login_failed``, with ``reason``), and the device
itself slows down after each wrong code (django-otp's exponential throttle).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from core import clock
from core.errors import InvalidCredentials, InvalidInput, OtpInvalid, OtpRequired, TooManyLoginAttempts
from core.models import User, WorkerHeartbeat

TOTP_STEP = 30  # seconds (RFC 6238's default, what every authenticator app assumes)
TOTP_DIGITS = 6
TOTP_TOLERANCE = 1  # steps either side accepted: a phone's clock may be half a minute off
TOTP_SECRET_BYTES = 20  # a generated secret: 160 bits, as RFC 4226 recommends
TOTP_SECRET_MIN_BYTES = 16  # RFC 4226: at least 128 bits
TOTP_SECRET_MAX_BYTES = 40  # what TOTPDevice.key holds
_CODE = re.compile(r"^[0-9]{6}$")


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


def totp_secret_parse(secret: str) -> bytes:
    """A base32 secret as an authenticator shows it (any case, spaces and padding allowed) → its
    bytes; ``InvalidInput`` on ``secret`` unless it is base32 of 16 to 40 bytes."""
    text = re.sub(r"[\s=-]", "", secret or "").upper()
    try:
        key = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(errors={"secret": [_("The secret must be base32 (letters A-Z and digits 2-7).")]}) from exc
    if not TOTP_SECRET_MIN_BYTES <= len(key) <= TOTP_SECRET_MAX_BYTES:
        raise InvalidInput(errors={"secret": [_("The secret must be 26 to 64 base32 characters (128 to 320 bits).")]})
    return key


def totp_uri(device: TOTPDevice) -> str:
    """The ``otpauth://totp/...`` URI of ``device`` (Google Authenticator's key URI format): what an
    authenticator app scans. It holds the secret: show it to the account's holder only."""
    issuer = settings.OTP_TOTP_ISSUER.replace(":", "")
    label = f"{issuer}:{device.user.get_username()}"
    params = {
        "secret": base64.b32encode(device.bin_key).decode().rstrip("="),
        "issuer": issuer,
        "algorithm": "SHA1",
        "digits": device.digits,
        "period": device.step,
    }
    return f"otpauth://totp/{quote(label)}?{urlencode(params, quote_via=quote)}"


def user_totp_set(*, user: User, secret: str | None = None) -> str:
    """Give ``user`` a TOTP authenticator with ``secret`` (base32), or with a new random one, in
    place of any earlier one (whose codes stop working); returns its ``otpauth://`` URI."""
    key = totp_secret_parse(secret) if secret is not None else secrets.token_bytes(TOTP_SECRET_BYTES)
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        TOTPDevice.objects.filter(user=user).delete()
        device = TOTPDevice.objects.create(
            user=user,
            name="authenticator",
            key=key.hex(),
            step=TOTP_STEP,
            digits=TOTP_DIGITS,
            tolerance=TOTP_TOLERANCE,
            confirmed=True,
        )
    return totp_uri(device)


def _second_factor_failed(*, request: HttpRequest, user: User, reason: str) -> None:
    """A refused code is a failed login: the login throttle counts it against the username and
    address (django-axes listens), and the regulator's audit log records it with ``reason``."""
    user_login_failed.send(
        sender=__name__, credentials={"username": user.get_username()}, request=request, user=user, reason=reason
    )


def second_factor_verify(*, request: HttpRequest, user: User, code: str | None) -> TOTPDevice:
    """The device that accepts ``code`` (6 digits; spaces ignored) as ``user``'s current code.

    Refused: ``OtpRequired`` (no code, or no authenticator set up), ``OtpInvalid`` (wrong, malformed,
    or already used), ``TooManyLoginAttempts`` (the device is slowed down after wrong codes, or the
    login throttle has locked this username and address out).
    """
    code = re.sub(r"\s", "", code or "")
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
        wait = 0
        if device is None or not code:
            outcome = "otp_required"
        else:
            allowed, info = device.verify_is_allowed()
            if not allowed:
                outcome = "otp_throttled"
                wait = math.ceil((info["locked_until"] - clock.now()).total_seconds())
            elif not _CODE.match(code):
                device.throttle_increment(commit=True)  # a guess all the same (and "12" must not pass as 000012)
                outcome = "otp_invalid"
            elif device.verify_token(code):  # refuses a step at or before last_t: no replay
                return device
            else:
                outcome = "otp_invalid"
    _second_factor_failed(request=request, user=user, reason=outcome)
    if getattr(request, "axes_locked_out", False):
        raise TooManyLoginAttempts()
    if outcome == "otp_throttled":
        seconds = max(wait, 1)
        detail = ngettext(
            "Too many wrong codes in a row: wait %(seconds)s second before the next one.",
            "Too many wrong codes in a row: wait %(seconds)s seconds before the next one.",
            seconds,
        )
        raise TooManyLoginAttempts(detail % {"seconds": seconds})
    if outcome == "otp_required":
        if device is None:
            raise OtpRequired(
                _("No authenticator is set up for this account: an operator must set one (manage.py totp_reset).")
            )
        raise OtpRequired()
    raise OtpInvalid()


def auth_token_issue(*, request: HttpRequest, username: str, password: str, otp: str | None = None) -> str:
    """The API token of the user with these credentials (created on first use). A regulator also
    sends ``otp``, the authenticator's current code (``second_factor_verify``).

    ``request`` lets the login throttle (django-axes) count the attempt against this username and
    client address, and refuse it while they are locked out.
    """
    # As user_create stored it: the name logs in however its characters were typed.
    user = authenticate(request, username=User.normalize_username(username), password=password)
    if getattr(request, "axes_locked_out", False):
        raise TooManyLoginAttempts()
    if user is None or not user.is_active:
        raise InvalidCredentials()
    if user.needs_second_factor:
        second_factor_verify(request=request, user=user, code=otp)
    # A token is a login: last_login is kept, and the throttle forgets this user's earlier failures.
    user_logged_in.send(sender=user.__class__, request=request, user=user)
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def heartbeat_record(*, name: str) -> None:
    WorkerHeartbeat.objects.update_or_create(name=name, defaults={"last_seen": clock.now()})
