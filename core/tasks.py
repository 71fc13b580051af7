from celery import shared_task

from core import services


@shared_task
def heartbeat_task() -> None:
    """Scheduled by beat and run by the worker: proves both are alive (shown by /healthz)."""
    services.heartbeat_record(name="worker")
