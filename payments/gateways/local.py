"""The sandbox custody bank: it keeps its own statement of what it received and paid, which
reconciliation compares with the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from django.conf import settings
from django.db.models import Sum

from core import clock, sql
from core.gateways import GatewayError, PaymentIntent
from payments.models import BankTransaction


class LocalGateway:
    name = "local"
    in_database = True

    def payment_create(self, *, card_id: str, amount: int, idempotency_key: str) -> PaymentIntent:
        return PaymentIntent(external_id=f"local_pi_{uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex}")

    def payment_received(self, *, payment_external_id: str, amount: int) -> None:
        """The bank's record of a consumer's payment arriving (what ``simulate`` stands for).

        One plain INSERT (every sandbox payment makes it; bench/flow.py), which nobody reads
        back: inside a request's transaction it travels with the next statement
        (``core.sql.execute_all``). The bank records a payment once, however often it is told."""
        charge = BankTransaction(
            kind=BankTransaction.Kind.CHARGE,
            reference=f"charge:{payment_external_id}",
            amount=amount,
            created_at=clock.now(),
        )
        # The reference is the row's only unique value besides its id: a conflict is this charge.
        sql.execute_all([sql.insert_statement(charge, skip_conflicts=True)])

    def refund_send(
        self, *, payment_external_id: str, amount: int, idempotency_key: str, first_sent_at: datetime | None = None
    ) -> str:
        # The bank's rows keep their keys for ever (a unique column): ``first_sent_at`` changes nothing.
        return self.refunds_send_many(refunds=[(payment_external_id, amount, idempotency_key)])[0]

    def refunds_send_many(self, *, refunds: Sequence[tuple[str, int, str]]) -> list[str]:
        """Pay many refunds back, each ``(payment_external_id, amount, idempotency_key)`` as
        ``refund_send`` takes them, in the caller's transaction; returns their references in
        order. The same key pays once: a key paid before gets its first reference back.
        With ``SANDBOX_REFUSE_REFUNDS`` on, the bank refuses them all (retryable, as a bank that is down)."""
        if settings.SANDBOX_REFUSE_REFUNDS:
            raise GatewayError("the sandbox bank refuses refunds (SANDBOX_REFUSE_REFUNDS is on)")
        return self._pay_out_many(
            kind=BankTransaction.Kind.REFUND, prefix="refund", mark="local_re", items=[(a, k) for _, a, k in refunds]
        )

    def payout_send(self, *, settlement_id: str, amount: int, destination: str, idempotency_key: str) -> str:
        """Pay a merchant's settlement from custody; the same key pays once."""
        return self.payouts_send_many(payouts=[(settlement_id, amount, destination, idempotency_key)])[0]

    def payouts_send_many(self, *, payouts: Sequence[tuple[str, int, str, str]]) -> list[str]:
        """Pay many settlements, each ``(settlement_id, amount, destination, idempotency_key)`` as
        ``payout_send`` takes them, in the caller's transaction; returns their references in order.
        The same key pays once."""
        return self._pay_out_many(
            kind=BankTransaction.Kind.PAYOUT, prefix="payout", mark="local_po", items=[(a, k) for _, a, _, k in payouts]
        )

    def _pay_out_many(self, *, kind: str, prefix: str, mark: str, items: Sequence[tuple[int, str]]) -> list[str]:
        """One INSERT of the bank's rows for ``(amount, idempotency_key)`` pairs (a key paid before
        keeps its first row), then their references, in order."""
        references = [f"{prefix}:{key}" for _, key in items]
        sql.rows_insert(
            model=BankTransaction,
            fields=["reference", "amount"],
            rows=[(reference, -amount) for reference, (amount, _) in zip(references, items, strict=True)],
            constants={"kind": kind, "created_at": clock.now()},
            ignore_conflicts=True,  # the bank pays a key once, however often it is asked
        )
        ids = dict(BankTransaction.objects.filter(reference__in=references).values_list("reference", "pk"))
        return [f"{mark}_{ids[reference]}" for reference in references]

    def custody_balance(self) -> int:
        """Fen the sandbox bank holds by its own statement: everything received less everything paid."""
        return BankTransaction.objects.aggregate(total=Sum("amount"))["total"] or 0
