from django.apps import AppConfig


class RegulatorConfig(AppConfig):
    name = "regulator"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
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
        # Regulators' sign-ins, failures and sign-outs (core's login and token views send Django's signals).
        user_logged_in.connect(_logged_in, dispatch_uid="regulator.audit_login")
        user_login_failed.connect(_login_failed, dispatch_uid="regulator.audit_login_failed")
        user_logged_out.connect(_logged_out, dispatch_uid="regulator.audit_logout")


def _mass_refund_saved(sender, instance, created, **kwargs) -> None:
    """A regulator's ``order_refunds`` follows its mass refund, in the transaction that saved it."""
    if created:
        return
    from regulator.services.actions import action_follow_mass_refund

    action_follow_mass_refund(job=instance)


def _logged_in(sender, request, user, **kwargs) -> None:
    if getattr(user, "needs_second_factor", False):
        from regulator.services.audit import audit_sign_in

        audit_sign_in(user=user, request=request)


def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    """A refused password (Django's ``authenticate``) or code (``core.services.second_factor_verify``,
    which sends ``user`` and ``reason``) for a regulator's account. Other accounts' are not the
    regulator's to log (the login throttle still counts them)."""
    user = kwargs.get("user")
    if user is None:
        from core.models import User

        username = User.normalize_username(str((credentials or {}).get("username") or ""))
        user = User.objects.filter(username=username).first() if username else None
    if user is None or not user.needs_second_factor:
        return
    from regulator.services.audit import audit_sign_in_failed

    reason = kwargs.get("reason") or ("locked_out" if getattr(request, "axes_locked_out", False) else "password")
    audit_sign_in_failed(user=user, request=request, reason=reason)


def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None and getattr(user, "needs_second_factor", False):
        from regulator.services.audit import audit_sign_out

        audit_sign_out(user=user, request=request, reason=getattr(request, "session_end_reason", ""))
