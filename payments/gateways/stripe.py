"""Stripe as the custody bank (PAYMENT_GATEWAY=stripe), through the official ``stripe`` library.

A card's payment is a PaymentIntent in fen of CNY that the consumer's browser confirms with its
client secret; Stripe tells us the outcome by webhook (``payments.webhooks``). Refunds, and payouts
(Transfers to the merchant's connected account), are sent by the outbox. Every call carries the
caller's idempotency key, so a retry after a lost answer gets the first answer back instead of
moving money twice.

Stripe keeps an idempotency key for 24 hours. A retry later than that (a message an operator
sends again days after its answer was lost) would move the money a second time under the same key,
so such a retry first asks Stripe what it already holds: a refund carrying the key in its metadata,
or a transfer in the settlement's transfer group (looked up before every payout, one a merchant a day).

The library never retries on its own (``max_network_retries=0``): retries belong to the outbox,
which records each attempt and backs off, and a purchase that cannot reach Stripe answers 503 at
once. Errors are sorted only by whether trying again can help.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import stripe
from django.conf import settings

from core import clock
from core.formatting import CURRENCY
from core.gateways import GatewayError, PaymentIntent

# Seconds to wait for Stripe. A refund waits inside the outbox's transaction, holding its rows, so
# it should not wait long; a timed-out call is safe to repeat under the same idempotency key.
TIMEOUT_SECONDS = 30

# Balance transactions asked for per page when reading Stripe's statement (Stripe's maximum).
BALANCE_PAGE_SIZE = 100

# Trying again can help: the network, Stripe's rate limiter, a 5xx (including 409 "a request with
# this key is still running"). Anything else is a 4xx the same request will always get.
_RETRYABLE = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)

# Stripe prunes an idempotency key "after it's at least 24 hours old"; trust one for less, to be safe.
KEY_TRUSTED_FOR = timedelta(hours=23)


@contextmanager
def _stripe_call() -> Iterator[None]:
    """Stripe's errors as the gateway's: retryable when the network, Stripe's rate limit or its
    servers failed, final otherwise, with Stripe's class and HTTP status in the message."""
    try:
        yield
    except stripe.StripeError as exc:
        retryable = isinstance(exc, _RETRYABLE)
        status = getattr(exc, "http_status", None)
        message = f"stripe {type(exc).__name__} ({status or 'no answer'}): {exc}"
        raise GatewayError(message, retryable=retryable) from exc


class StripeGateway:
    name = "stripe"
    in_database = False

    def __init__(self) -> None:
        self.client = stripe.StripeClient(
            api_key=settings.STRIPE_API_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        )

    def payment_create(self, *, card_id: str, amount: int, idempotency_key: str) -> PaymentIntent:
        with _stripe_call():
            intent = self.client.v1.payment_intents.create(
                {
                    "amount": amount,
                    "currency": CURRENCY,
                    "payment_method_types": ["card"],
                    "metadata": {"card_id": card_id},
                },
                {"idempotency_key": idempotency_key},
            )
        return PaymentIntent(external_id=intent.id, client_secret=intent.client_secret or "")

    def refund_send(
        self, *, payment_external_id: str, amount: int, idempotency_key: str, first_sent_at: datetime | None = None
    ) -> str:
        if first_sent_at is not None and first_sent_at < clock.now() - KEY_TRUSTED_FOR:
            for earlier in self.refund_list(payment_external_id=payment_external_id):
                made_here = (earlier.get("metadata") or {}).get("idempotency_key") == idempotency_key
                if made_here and earlier.get("status") not in ("failed", "canceled"):
                    return earlier["id"]
        with _stripe_call():
            refund = self.client.v1.refunds.create(
                {
                    "payment_intent": payment_external_id,
                    "amount": amount,
                    "metadata": {"idempotency_key": idempotency_key},
                },
                {"idempotency_key": idempotency_key},
            )
        return refund.id

    def refund_list(self, *, payment_external_id: str) -> list[dict[str, Any]]:
        """The refunds Stripe holds for a PaymentIntent (for webhooks whose charge omits them)."""
        with _stripe_call():
            page = self.client.v1.refunds.list({"payment_intent": payment_external_id, "limit": 100})
        return [refund.to_dict() for refund in page.data]

    def payout_send(self, *, settlement_id: str, amount: int, destination: str, idempotency_key: str) -> str:
        """Pay a settlement to the merchant's connected account as a Transfer, unless its transfer
        group already holds one that was not reversed; the same key pays once."""
        group = f"settlement_{settlement_id}"
        with _stripe_call():
            made = self.client.v1.transfers.list({"transfer_group": group, "limit": 10})
        for earlier in made.data:
            if earlier.amount_reversed < earlier.amount:
                return earlier.id
        with _stripe_call():
            transfer = self.client.v1.transfers.create(
                {
                    "amount": amount,
                    "currency": CURRENCY,
                    "destination": destination,
                    "transfer_group": group,
                    "metadata": {"settlement_id": settlement_id},
                },
                {"idempotency_key": idempotency_key},
            )
        return transfer.id

    def custody_balance(self) -> int:
        """Fen held at Stripe by its own statement: the sum of every balance transaction in CNY
        (charges in, refunds and transfers out), for reconciliation with the ledger's custody."""
        with _stripe_call():
            page = self.client.v1.balance_transactions.list({"currency": CURRENCY, "limit": BALANCE_PAGE_SIZE})
            return sum(txn.amount for txn in page.auto_paging_iter() if txn.currency == CURRENCY)
