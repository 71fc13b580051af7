"""A real Celery worker for tests that run the platform's jobs in another process."""

# ``celery -A config worker -P solo --concurrency 1 -Q <queue> ...``, with <queue> also the queue the
# worker sends its own tasks to (a mass refund's next chunk, the refunds' payments): the command
# line has no option for that. Run as ``[sys.executable, "-c", WORKER_MAIN, queue]``.
WORKER_MAIN = """
import sys
from config.celery import app
queue = sys.argv[1]
app.conf.task_default_queue = queue
app.worker_main([
    "worker", "-P", "solo", "--concurrency", "1", "-Q", queue,
    "--without-mingle", "--without-gossip", "--without-heartbeat", "-l", "WARNING",
])
"""
