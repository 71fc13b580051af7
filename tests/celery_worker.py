"""A real Celery worker for tests that run the platform's jobs in another process."""

# ``celery -A config worker -P solo --concurrency 1 -Q <queue>,<queue>.bulk ...``, with <queue> also the
# queue the worker sends its own tasks to (a mass refund's next chunk, the refunds' payments): the
# command line has no option for that; bulk tasks go to <queue>.bulk (core/queues.py). Run as
# ``[sys.executable, "-c", WORKER_MAIN, queue]``, or ``..., queue, "bulk"`` / ``"default"`` for a
# worker that takes only that one of the two.
WORKER_MAIN = """
import os
import sys
from config.celery import app
from core.queues import bulk_queue
queue = sys.argv[1]
only = sys.argv[2] if len(sys.argv) > 2 else ""
app.conf.task_default_queue = queue
takes = {"bulk": bulk_queue(queue), "default": queue}.get(only, f"{queue},{bulk_queue(queue)}")
app.worker_main([
    "worker", "-P", "solo", "--concurrency", "1", "-Q", takes,
    "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", os.environ.get("WORKER_LOG_LEVEL", "WARNING"),
])
"""
