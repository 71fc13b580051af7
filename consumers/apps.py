from django.apps import AppConfig


class ConsumersConfig(AppConfig):
    name = "consumers"

    def ready(self) -> None:
        from consumers.errors import PaymentNotPending
        from consumers.selectors import (
            card_holders_after,
            card_holders_count,
            merchant_card_figures,
            merchant_escrow_outstanding,
        )
        from consumers.services import payment_settle
        from merchants.handlers import card_figures_register, escrow_outstanding_register
        from notifications.audiences import audience_register
        from payments.handlers import payment_decided_register

        # Every consumer whose card at merchant X still holds escrow (X: the fan-out's audience_arg).
        audience_register("card_holders", page=card_holders_after, count=card_holders_count)
        # A payment the gateway reports succeeded or abandoned (Stripe's webhook) settles the card.
        payment_decided_register(payment_settle, already_decided=PaymentNotPending)
        # A merchant's balance: what its customers' cards still hold in escrow.
        escrow_outstanding_register(merchant_escrow_outstanding)
        # The filing triggers: what its cards were paid, and how many still hold escrow.
        card_figures_register(merchant_card_figures)
