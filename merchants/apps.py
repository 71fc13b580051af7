from django.apps import AppConfig


class MerchantsConfig(AppConfig):
    name = "merchants"

    def ready(self) -> None:
        from core.outbox import outbox_register
        from merchants.services.settlement import PAYOUT_TOPIC, payout_deliver, payout_delivery_dead

        outbox_register(PAYOUT_TOPIC, deliver=payout_deliver, on_dead=payout_delivery_dead)
