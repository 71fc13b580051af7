from django.apps import AppConfig


class MerchantsConfig(AppConfig):
    name = "merchants"

    def ready(self) -> None:
        from core.gateways import gateway_in_database
        from core.outbox import outbox_register
        from merchants import metrics
        from merchants.services.settlement import (
            PAYOUT_BATCH,
            PAYOUT_TOPIC,
            payout_deliver,
            payout_delivery_dead,
            payouts_deliver_batch,
        )

        outbox_register(
            PAYOUT_TOPIC,
            deliver=payout_deliver,
            on_dead=payout_delivery_dead,
            deliver_many=payouts_deliver_batch,
            batch_size=PAYOUT_BATCH,
            batch_if=gateway_in_database,
        )
        metrics.register()  # held payouts and settlement runs, on /metrics
