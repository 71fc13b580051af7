from celery import shared_task

from notifications import services


@shared_task(acks_late=True, bulk=True)
def fanout_step_task(job_id: int, chunk: int = services.FANOUT_CHUNK) -> bool:
    """One chunk of a fan-out; queues the next chunk while people remain."""
    more = services.fanout_step(job_id=job_id, chunk=chunk)
    if more:
        fanout_step_task.delay(job_id, chunk)
    return more


@shared_task(bulk=True)
def fanouts_resume_task() -> int:
    return services.fanouts_resume()
