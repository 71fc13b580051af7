"""Two queues: what a person waits for, and bulk work.

Bulk work (a day's settlement, a mass refund's chunks, a fan-out's chunks and its SMS batches, the
nightly risk, reconciliation and ledger check, the filing check) goes to a queue of its own, so that
an hour of it never delays a person's notice or a single refund's payment. A task is bulk when it is
declared ``@shared_task(bulk=True)``; its queue is the default queue's name followed by ``.bulk``
(``celery.bulk``), so that a test's worker on a queue of its own gets a bulk queue of its own too.

A worker started without ``-Q`` takes both (``CELERY_TASK_QUEUES``); ``docker-compose --profile
scale`` runs a second worker for the bulk queue alone, and the first for what people wait for.
"""

from __future__ import annotations

from typing import Any

BULK_SUFFIX = ".bulk"


def bulk_queue(default_queue: str) -> str:
    return f"{default_queue}{BULK_SUFFIX}"


def task_route(name: str, args: Any, kwargs: Any, options: dict, task: Any = None, **kw: Any) -> dict | None:
    """``CELERY_TASK_ROUTES``: a bulk task to the bulk queue; any other to the default queue."""
    if task is not None and getattr(task, "bulk", False):
        return {"queue": bulk_queue(task.app.conf.task_default_queue)}
    return None
