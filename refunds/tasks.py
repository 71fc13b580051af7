from celery import shared_task

from refunds import services


@shared_task(acks_late=True, bulk=True)
def mass_refund_step_task(job_id: int) -> bool:
    """One chunk of a mass refund; queues the next chunk while cards remain."""
    more = services.mass_refund_step(job_id=job_id)
    if more:
        mass_refund_step_task.delay(job_id)
    return more


@shared_task(bulk=True)
def mass_refunds_resume_task() -> int:
    return services.mass_refunds_resume()


@shared_task
def refunds_mark_overdue_task() -> int:
    return services.refunds_mark_overdue()
