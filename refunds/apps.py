from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"

    def ready(self) -> None:
        from core.gateways import gateway_in_database
        from core.outbox import outbox_register
        from merchants.handlers import (
            closure_refunds_register,
            operator_change_refunds_register,
            refund_counts_register,
        )
        from payments.handlers import refund_reported_register
        from refunds import metrics
        from refunds.merchant_events import (
            merchant_cards_left,
            merchant_closure_refunds_start,
            merchant_refund_counts,
            operator_change_cards_left,
            operator_change_refunds_start,
        )
        from refunds.payment_events import refund_reported_handle
        from refunds.services import (
            REFUND_BATCH,
            REFUND_TOPIC,
            refund_deliver,
            refund_delivery_dead,
            refund_delivery_failed,
            refunds_deliver_batch,
        )

        outbox_register(
            REFUND_TOPIC,
            deliver=refund_deliver,
            on_dead=refund_delivery_dead,
            on_failure=refund_delivery_failed,
            deliver_many=refunds_deliver_batch,
            batch_size=REFUND_BATCH,
            batch_if=gateway_in_database,
        )
        # A refund Stripe reports paid (its webhook) that we have not marked paid yet.
        refund_reported_register(refund_reported_handle)
        # A settlement counts the refunds of the merchant's cards in its window.
        refund_counts_register(merchant_refund_counts)
        # A closing merchant's day has come: refund its cards, then it closes.
        closure_refunds_register(cards_left=merchant_cards_left, start=merchant_closure_refunds_start)
        # Failed and overdue refunds, on /metrics.
        metrics.register()
        # The day of a change of operator has come: refund the cards of holders who did not consent.
        operator_change_refunds_register(cards_left=operator_change_cards_left, start=operator_change_refunds_start)
