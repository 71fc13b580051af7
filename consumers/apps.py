from django.apps import AppConfig


class ConsumersConfig(AppConfig):
    name = "consumers"

    def ready(self) -> None:
        from consumers.selectors import card_holders_after, card_holders_count
        from notifications.audiences import audience_register

        # Every consumer whose card at merchant X still holds escrow (X: the fan-out's audience_arg).
        audience_register("card_holders", page=card_holders_after, count=card_holders_count)
