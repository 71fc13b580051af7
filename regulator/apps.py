from django.apps import AppConfig


class RegulatorConfig(AppConfig):
    name = "regulator"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from refunds.models import MassRefund

        post_save.connect(_mass_refund_saved, sender=MassRefund, dispatch_uid="regulator.follow_mass_refund")


def _mass_refund_saved(sender, instance, created, **kwargs) -> None:
    """A regulator's ``order_refunds`` follows its mass refund, in the transaction that saved it."""
    if created:
        return
    from regulator.services.actions import action_follow_mass_refund

    action_follow_mass_refund(job=instance)
