from celery import shared_task


@shared_task
def complaints_mark_overdue_task() -> int:
    """Every 5 minutes (beat): open complaints past their deadline become overdue; merchants are told."""
    from complaints.services import complaints_mark_overdue

    return complaints_mark_overdue()


@shared_task
def complaints_due_remind_task() -> int:
    """Every 10 minutes (beat): merchants are told of unanswered complaints due within 6 hours."""
    from complaints.reminders import complaints_due_remind

    return complaints_due_remind()
