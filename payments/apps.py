from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"

    def ready(self) -> None:
        from core.gateways import gateway_register

        # By dotted path: a gateway's module (and Stripe's library) is imported at its first use.
        gateway_register("local", "payments.gateways.local.LocalGateway")
        gateway_register("stripe", "payments.gateways.stripe.StripeGateway")
