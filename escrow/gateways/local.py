"""The sandbox custody bank: it keeps its own statement of what it received and paid, which
reconciliation compares with the ledger."""

from __future__ import annotations

import uuid

from django.db.models import Sum

from core import clock
from escrow.gateways import PaymentIntent
from escrow.models import BankTransaction


class LocalGateway:
    name = "local"

    def payment_create(self, *, card_id: str, amount: int, idempotency_key: str) -> PaymentIntent:
        return PaymentIntent(external_id=f"local_pi_{uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex}")

    def payment_received(self, *, payment_external_id: str, amount: int) -> None:
        """The bank's record of a consumer's payment arriving (what ``simulate`` stands for)."""
        BankTransaction.objects.bulk_create(
            [
                BankTransaction(
                    kind=BankTransaction.Kind.CHARGE,
                    reference=f"charge:{payment_external_id}",
                    amount=amount,
                    created_at=clock.now(),
                )
            ],
            ignore_conflicts=True,  # the bank records a payment once, however often it is told
        )

    def refund_send(self, *, payment_external_id: str, amount: int, idempotency_key: str) -> str:
        transaction, _ = BankTransaction.objects.get_or_create(
            reference=f"refund:{idempotency_key}",
            defaults={"kind": BankTransaction.Kind.REFUND, "amount": -amount, "created_at": clock.now()},
        )
        return f"local_re_{transaction.pk}"

    def payout_send(self, *, settlement_id: str, amount: int, destination: str, idempotency_key: str) -> str:
        """Pay a merchant's settlement from custody; the same key pays once."""
        transaction, _ = BankTransaction.objects.get_or_create(
            reference=f"payout:{idempotency_key}",
            defaults={"kind": BankTransaction.Kind.PAYOUT, "amount": -amount, "created_at": clock.now()},
        )
        return f"local_po_{transaction.pk}"

    def custody_balance(self) -> int:
        """Fen the sandbox bank holds by its own statement: everything received less everything paid."""
        return BankTransaction.objects.aggregate(total=Sum("amount"))["total"] or 0
