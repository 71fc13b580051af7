"""The demo data: a believable Beijing market with ninety days of history (``seed_demo``).

``demo_state`` says whether the database is empty, holds the demo, holds an unfinished demo or
holds data of its own; ``demo_load`` loads the demo into an empty database
(``demo.history`` plays the history through the real services); ``demo_logins`` and
``demo_risk_top`` are what the command prints afterwards, with ``demo_regulator_totp``, the demo
regulator's authenticator (its secret is public, like the password).

Loading needs an empty database because the history is written in the past: its journal entries
would fall into days a real database has already settled, and its usernames could be taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from complaints.models import Complaint
from consumers.models import Card, Consumer
from core.models import User
from core.services import totp_secret_parse, totp_uri, user_totp_set
from demo.city import SHOPS
from demo.history import (
    CONSUMERS,
    DEMO_CONSUMER,
    DEMO_MERCHANT,
    DEMO_PASSWORD,
    DEMO_TOTP_SECRET,
    REGULATOR,
    Loaded,
    history_load,
)
from escrow.models import JournalEntry
from merchants.models import Merchant, SettlementRun
from regulator.models import RiskAssessment

EMPTY, LOADED, UNFINISHED, OCCUPIED = "empty", "loaded", "unfinished", "occupied"

__all__ = [
    "DEMO_CONSUMER",
    "DEMO_MERCHANT",
    "DEMO_PASSWORD",
    "DEMO_TOTP_SECRET",
    "REGULATOR",
    "demo_load",
    "demo_logins",
    "demo_other_logins",
    "demo_risk_top",
    "demo_state",
]


@dataclass(frozen=True)
class Login:
    role: str
    username: str
    shows: str


LOGINS = (
    Login(
        "regulator", REGULATOR, "risk ranking (three runaways flagged high), complaints, hotline work orders, ledger"
    ),
    Login(
        "merchant",
        DEMO_MERCHANT,
        "阳光健身（望京店）: daily settlements and payouts, complaints to answer, services awaiting confirmation",
    ),
    Login(
        "consumer",
        DEMO_CONSUMER,
        "cards in every state: cooling-off, active (a session waits for confirmation), small balance, "
        "exhausted, refunded; a complaint against a runaway",
    ),
)


def demo_state() -> str:
    """``loaded`` (the demo is complete), ``unfinished`` (a load stopped half-way), ``occupied``
    (the database holds other data or the demo's usernames) or ``empty``."""
    demo_merchant = Merchant.objects.filter(user__username=DEMO_MERCHANT).first()
    if demo_merchant is not None:
        # Risk is scored last: a demo without its scores did not finish loading.
        return LOADED if RiskAssessment.objects.filter(merchant=demo_merchant).exists() else UNFINISHED
    usernames = [REGULATOR, DEMO_CONSUMER, DEMO_MERCHANT]
    tables = (Merchant, Consumer, Card, JournalEntry, SettlementRun, Complaint)
    if User.objects.filter(username__in=usernames).exists() or any(model.objects.exists() for model in tables):
        return OCCUPIED
    return EMPTY


def demo_load(*, say: Callable[[str], None]) -> Loaded:
    """Load the demo into an empty database; needs the local sandbox gateway (the demo's
    consumers pay through it)."""
    if settings.PAYMENT_GATEWAY != "local":
        raise RuntimeError("the demo's payments go through the local sandbox gateway (PAYMENT_GATEWAY=local)")
    return history_load(say=say)


def demo_logins() -> tuple[Login, ...]:
    return LOGINS


def _demo_regulator_device() -> TOTPDevice | None:
    """The demo regulator's authenticator, if it holds the demo's public secret (never another's)."""
    device = TOTPDevice.objects.select_related("user").filter(user__username=REGULATOR, confirmed=True).first()
    if device is None or device.bin_key != totp_secret_parse(DEMO_TOTP_SECRET):
        return None
    return device


def demo_regulator_totp() -> str | None:
    """The demo regulator's authenticator URI (``otpauth://``), after giving the demo regulator the
    demo's authenticator if it has none (a demo loaded before regulators had two factors); None
    when the database holds no demo regulator, or one whose authenticator is not the demo's."""
    user = User.objects.filter(username=REGULATOR, role=User.Role.REGULATOR).first()
    if user is None:
        return None
    if not TOTPDevice.objects.filter(user=user).exists():
        return user_totp_set(user=user, secret=DEMO_TOTP_SECRET)
    device = _demo_regulator_device()
    return totp_uri(device) if device is not None else None


def demo_regulator_code() -> str | None:
    """The demo regulator's current 6-digit code (what its authenticator app shows now), or None
    without the demo's authenticator. Only the demo's: its secret is public anyway."""
    device = _demo_regulator_device()
    if device is None:
        return None
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def demo_login_hint() -> dict[str, str] | None:
    """What the login pages show in debug mode (core.web.login_debug_hint_register): the demo
    regulator's authenticator, when the demo is loaded."""
    device = _demo_regulator_device()
    return {"username": REGULATOR, "uri": totp_uri(device)} if device is not None else None


def demo_other_logins() -> str:
    """The usernames of the demo's other merchants and consumers (same password)."""
    return f"merchant-01 … merchant-{len(SHOPS) - 1:02d}, consumer-001 … consumer-{CONSUMERS - 1:03d}"


def demo_risk_top(n: int = 5) -> list[Merchant]:
    """The merchants the regulator sees first: highest risk score."""
    return list(Merchant.objects.select_related("user").order_by("-risk_score", "name")[:n])
