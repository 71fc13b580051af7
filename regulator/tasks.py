from celery import shared_task


@shared_task
def compute_risk_task() -> int:
    """The nightly risk run (beat), also queued on demand by the regulator."""
    from regulator.services.risk import compute_risk

    return compute_risk().merchants


@shared_task
def complaints_mark_overdue_task() -> int:
    """Every 5 minutes (beat): open complaints past their deadline become overdue; merchants are told."""
    from regulator.services.complaints import complaints_mark_overdue

    return complaints_mark_overdue()


@shared_task
def complaints_due_remind_task() -> int:
    """Every 10 minutes (beat): merchants are told of unanswered complaints due within 6 hours."""
    from regulator.services.reminders import complaints_due_remind

    return complaints_due_remind()
