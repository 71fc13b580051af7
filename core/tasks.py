from celery import shared_task

from core import idempotency, services


@shared_task
def heartbeat_task() -> None:
    """Scheduled by beat and run by the worker: proves both are alive (shown by /healthz)."""
    services.heartbeat_record(name="worker")


@shared_task
def idempotency_purge_task() -> int:
    """Daily: forget stored responses older than the 24-hour replay window."""
    return idempotency.idempotency_purge()


@shared_task(acks_late=True)
def outbox_deliver_task(message_id: int) -> str:
    from core.outbox import outbox_deliver

    return outbox_deliver(message_id=message_id)


@shared_task(acks_late=True, bulk=True)
def outbox_deliver_many_task(message_ids: list[int]) -> int:
    """Deliver a batch (a day's payouts, a chunk of refunds): one task per chunk, not per message,
    and one transaction per ``batch_size`` messages where the topic allows it."""
    from core.outbox import outbox_deliver_many

    return outbox_deliver_many(message_ids=message_ids)


@shared_task
def outbox_sweep_task() -> int:
    """Every minute: deliver messages whose first attempt never got queued or whose retry is due."""
    from core.outbox import outbox_deliver_many, outbox_due_ids

    ids = outbox_due_ids()
    outbox_deliver_many(message_ids=ids)
    return len(ids)
