from datetime import timedelta

from celery import shared_task

from core import clock
from merchants.services.settlement import settlement_run


@shared_task(acks_late=True, bulk=True)
def settlement_daily_task() -> str:
    """02:00 Beijing: settle yesterday; safe to repeat after a crash."""
    run = settlement_run(day=clock.local_date() - timedelta(days=1))
    return f"{run.date}: {run.merchants_total} merchants"


@shared_task
def closures_due_task() -> int:
    """Daily: refund the cards of merchants whose closing day has come; close the emptied ones."""
    from merchants.services.closure import closures_due

    return closures_due()


@shared_task(acks_late=True, bulk=True)
def filings_check_task() -> int:
    """Daily (beat, 01:00 Beijing): require a filing of each merchant that met a trigger of the rules
    profile; safe to repeat."""
    from merchants.services.filing import filings_check

    return filings_check()


@shared_task
def relocations_due_task() -> int:
    """Hourly: move the merchants whose moving day has come (their new address and district)."""
    from merchants.services.relocation import relocations_due

    return relocations_due()


@shared_task
def operator_changes_due_task() -> int:
    """Hourly: on the day of a change of operator, refund the cards whose holders did not consent,
    then complete the change."""
    from merchants.services.operator_change import operator_changes_due

    return operator_changes_due()
