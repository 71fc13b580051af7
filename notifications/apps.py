from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from core.outbox import outbox_register
        from notifications.services import (
            EMAIL_TOPIC,
            SMS_TOPIC,
            delivery_dead,
            email_deliver,
            sms_batchable,
            sms_deliver,
            sms_deliver_many,
        )

        outbox_register(
            SMS_TOPIC,
            deliver=sms_deliver,
            on_dead=delivery_dead,
            deliver_many=sms_deliver_many,
            batch_size=500,
            batch_if=sms_batchable,
        )
        outbox_register(EMAIL_TOPIC, deliver=email_deliver, on_dead=delivery_dead)
