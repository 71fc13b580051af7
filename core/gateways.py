"""The custody bank behind one interface: ``local`` (a sandbox) or ``stripe``.

The interface is here, below the ledger, because the ledger's reconciliation asks the bank for its
balance; the banks themselves are the payments app's (``payments.gateways``), which registers them
by name in its ``AppConfig.ready``.

The platform never holds card money itself; a gateway collects it into custody, sends refunds
back to consumers and payouts to merchants. Every call that moves money carries an idempotency
key, so a retry after a crash never moves it twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from core.outbox import DeliveryFailed


class GatewayError(DeliveryFailed):
    """The gateway refused or could not be reached; ``retryable`` says whether to try again.
    Raised inside an outbox delivery it is that delivery's failure, retried or given up."""


@dataclass(frozen=True)
class PaymentIntent:
    external_id: str
    client_secret: str = ""


class Gateway(Protocol):
    name: str
    # True when the gateway's money movements are rows of this database (the sandbox bank): many
    # of them may then share one transaction. Never for a gateway across the network, since a
    # transaction must not stay open across calls to the outside world.
    in_database: bool

    def payment_create(self, *, card_id: str, amount: int, idempotency_key: str) -> PaymentIntent: ...

    def refund_send(
        self, *, payment_external_id: str, amount: int, idempotency_key: str, first_sent_at: datetime | None = None
    ) -> str:
        """Pay a refund back once under ``idempotency_key``. ``first_sent_at`` is the earliest an
        attempt under that key may have reached the gateway (a gateway that forgets keys after a
        while checks for an earlier refund when that is long ago)."""
        ...

    def payout_send(self, *, settlement_id: str, amount: int, destination: str, idempotency_key: str) -> str: ...

    def custody_balance(self) -> int: ...


@runtime_checkable
class BatchGateway(Gateway, Protocol):
    """A gateway whose money movements are rows of this database (``in_database``, the sandbox
    bank): it also pays many refunds or payouts in one call, in the caller's transaction, each
    under its own key as the single call takes it, and returns their references in order."""

    def refunds_send_many(self, *, refunds: Sequence[tuple[str, int, str]]) -> list[str]:
        """Each ``(payment_external_id, amount, idempotency_key)``, as ``refund_send`` takes them."""
        ...

    def payouts_send_many(self, *, payouts: Sequence[tuple[str, int, str, str]]) -> list[str]:
        """Each ``(settlement_id, amount, destination, idempotency_key)``, as ``payout_send`` takes them."""
        ...


_GATEWAYS: dict[str, str] = {}  # name -> dotted path of the class, registered by the payments app


def gateway_register(name: str, path: str) -> None:
    """Make the gateway class at ``path`` (imported at first use) the one called ``name``."""
    _GATEWAYS[name] = path


def get_gateway(name: str | None = None) -> Gateway:
    name = name or settings.PAYMENT_GATEWAY
    if name not in _GATEWAYS:
        raise ValueError(f"unknown payment gateway {name!r}")
    return import_string(_GATEWAYS[name])()


def gateway_in_database() -> bool:
    """Whether the configured gateway's calls may share one transaction (``Gateway.in_database``):
    the ``batch_if`` of the outbox topics that pay through it, and whether a purchase request is
    one transaction."""
    return get_gateway().in_database


def get_batch_gateway(name: str | None = None) -> BatchGateway:
    """The configured gateway, for a batch handler (``outbox_deliver_batch``, which runs only when
    ``gateway_in_database``); a gateway that cannot pay in batches here is a configuration error."""
    gateway = get_gateway(name)
    if not (gateway.in_database and isinstance(gateway, BatchGateway)):
        raise ImproperlyConfigured(f"payment gateway {gateway.name!r} cannot pay in batches in this database")
    return gateway
