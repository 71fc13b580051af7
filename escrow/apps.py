from django.apps import AppConfig


class EscrowConfig(AppConfig):
    name = "escrow"
    verbose_name = "Escrow ledger"

    def ready(self) -> None:
        from escrow import metrics

        metrics.register()  # the newest ledger check's age and result, on /metrics
