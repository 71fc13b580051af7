"""Run the web server, the Celery worker and Celery beat side by side (``make run``).

Each runs as a child process in its own process group; the first to exit, or a Ctrl-C / SIGTERM,
stops all three: SIGTERM first, SIGKILL for any still running after the grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

GRACE_SECONDS = 15


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    process: subprocess.Popen | None = None


def platform_children(*, bind: str, web_workers: int) -> list[Child]:
    python = sys.executable
    return [
        Child(
            "web",
            [
                python,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                bind,
                "--workers",
                str(web_workers),
            ],  # no --access-logfile: the app writes one access line a request, with its request id
        ),
        Child("worker", [python, "-m", "celery", "-A", "config", "worker", "--loglevel", "INFO", "--concurrency", "2"]),
        Child("beat", [python, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"]),
    ]


def supervise(children: list[Child], *, log=print) -> int:
    """Start ``children``; return when all have stopped. The exit code is 0 after a requested stop."""
    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for child in children:
            # A group of its own, so a Ctrl-C reaches the children only through us, once.
            child.process = subprocess.Popen(child.argv, start_new_session=True)  # noqa: S603
            log(f"[platform] started {child.name} (pid {child.process.pid})")
        failed = None
        while not stopping and failed is None:
            time.sleep(0.2)
            failed = next((c for c in children if c.process.poll() is not None), None)
        if failed is not None:
            log(f"[platform] {failed.name} exited with {failed.process.returncode}; stopping the others")
        else:
            log("[platform] stopping web, worker and beat")
        _stop_all(children, log=log)
        return 0 if failed is None else 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(children: list[Child], *, log) -> None:
    for child in children:
        if child.process.poll() is None:
            os.killpg(child.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log(f"[platform] {child.name} did not stop in {GRACE_SECONDS}s; killing it")
            os.killpg(child.process.pid, signal.SIGKILL)
            child.process.wait()
    log("[platform] all stopped")
