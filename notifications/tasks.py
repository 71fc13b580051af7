from celery import shared_task

from notifications import services


@shared_task(acks_late=True)
def fanout_step_task(job_id: int) -> bool:
    """One chunk of a fan-out; queues the next chunk while people remain."""
    more = services.fanout_step(job_id=job_id)
    if more:
        fanout_step_task.delay(job_id)
    return more


@shared_task
def fanouts_resume_task() -> int:
    return services.fanouts_resume()
