from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"

    def ready(self) -> None:
        from core.outbox import outbox_register
        from refunds.services import REFUND_TOPIC, refund_deliver, refund_delivery_dead

        outbox_register(REFUND_TOPIC, deliver=refund_deliver, on_dead=refund_delivery_dead)
