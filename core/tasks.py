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
