from celery import shared_task


@shared_task
def compute_risk_task() -> int:
    """The nightly risk run (beat), also queued on demand by the regulator."""
    from regulator.services.risk import compute_risk

    return compute_risk().merchants


@shared_task(acks_late=True)
def periodic_report_step_task(report_id: str) -> bool:
    """One step of a periodic report; queues the next while steps remain."""
    from regulator.services.periodic_reports import periodic_report_step

    more = periodic_report_step(report_id=report_id)
    if more:
        periodic_report_step_task.delay(report_id)
    return more


@shared_task
def periodic_reports_scheduled_task() -> int:
    """Daily (beat): the reports of the month and the quarter that ended last, once each."""
    from regulator.services.periodic_reports import periodic_reports_scheduled

    return len(periodic_reports_scheduled())


@shared_task
def periodic_reports_resume_task() -> int:
    """The sweep (beat): reports whose worker died are queued again."""
    from regulator.services.periodic_reports import periodic_reports_resume

    return periodic_reports_resume()
