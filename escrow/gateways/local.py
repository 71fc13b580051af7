"""The sandbox custody bank: it keeps its own statement of what it received and paid, which
reconciliation compares with the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import connection
from django.db.models import Sum

from core import clock
from core.bulk import rows_insert
from escrow.gateways import PaymentIntent
from escrow.models import BankTransaction


class LocalGateway:
    name = "local"
    in_database = True

    def payment_create(self, *, card_id: str, amount: int, idempotency_key: str) -> PaymentIntent:
        return PaymentIntent(external_id=f"local_pi_{uuid.uuid5(uuid.NAMESPACE_URL, idempotency_key).hex}")

    def payment_received(self, *, payment_external_id: str, amount: int) -> None:
        """The bank's record of a consumer's payment arriving (what ``simulate`` stands for).

        One plain INSERT (every sandbox payment makes it; bench/flow.py): the bank records a
        payment once, however often it is told."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {BankTransaction._meta.db_table} (kind, reference, amount, created_at) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (reference) DO NOTHING",
                [BankTransaction.Kind.CHARGE.value, f"charge:{payment_external_id}", amount,
                 connection.ops.adapt_datetimefield_value(clock.now())],
            )  # fmt: skip

    def refund_send(self, *, payment_external_id: str, amount: int, idempotency_key: str) -> str:
        return self.refunds_send_many(refunds=[(payment_external_id, amount, idempotency_key)])[0]

    def refunds_send_many(self, *, refunds: Sequence[tuple[str, int, str]]) -> list[str]:
        """Pay many refunds back, each ``(payment_external_id, amount, idempotency_key)`` as
        ``refund_send`` takes them, in the caller's transaction; returns their references in
        order. The same key pays once: a key paid before gets its first reference back."""
        references = [f"refund:{key}" for _, _, key in refunds]
        rows_insert(
            model=BankTransaction,
            fields=["reference", "amount"],
            rows=[(reference, -amount) for reference, (_, amount, _) in zip(references, refunds, strict=True)],
            constants={"kind": BankTransaction.Kind.REFUND, "created_at": clock.now()},
            ignore_conflicts=True,  # the bank pays a key once, however often it is asked
        )
        ids = dict(BankTransaction.objects.filter(reference__in=references).values_list("reference", "pk"))
        return [f"local_re_{ids[reference]}" for reference in references]

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
