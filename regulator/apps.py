from django.apps import AppConfig


class RegulatorConfig(AppConfig):
    name = "regulator"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from complaints.audit import audit_writer_register
        from merchants.oversight import oversight_register
        from refunds.models import MassRefund
        from regulator.selectors.jurisdiction import jurisdiction_of
        from regulator.services.audit import audit_record

        post_save.connect(_mass_refund_saved, sender=MassRefund, dispatch_uid="regulator.follow_mass_refund")
        # Complaints' decisions are written to the regulator's audit log, in their own transaction.
        audit_writer_register(audit_record)
        # The apps below see a regulator's cards, refunds and complaints through its jurisdiction.
        oversight_register(jurisdiction_of)


def _mass_refund_saved(sender, instance, created, **kwargs) -> None:
    """A regulator's ``order_refunds`` follows its mass refund, in the transaction that saved it."""
    if created:
        return
    from regulator.services.actions import action_follow_mass_refund

    action_follow_mass_refund(job=instance)
