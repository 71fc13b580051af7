from celery import shared_task


@shared_task(bulk=True)
def compute_risk_task(regulator_id: int | None = None) -> int:
    """The nightly risk run (beat), also queued on demand by a regulator: then of the merchants of
    its jurisdiction alone (a regulator of part of the city rescores its own merchants only)."""
    from regulator.selectors.jurisdiction import jurisdiction_of_actor
    from regulator.services.risk import compute_risk

    jurisdiction = jurisdiction_of_actor(regulator_id)
    if jurisdiction.city_wide:
        return compute_risk().merchants
    return compute_risk(merchant_ids=list(jurisdiction.merchants().values_list("pk", flat=True))).merchants


@shared_task(acks_late=True, bulk=True)
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
