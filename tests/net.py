"""Helpers for tests that start servers of their own: a free port, a health read."""

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict | None:
    """The JSON at ``url``, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return None


def platform_start(*, env: dict[str, str], port: int, log: IO) -> subprocess.Popen:
    """What `make run` serves (``manage.py runplatform``: web with one worker, Celery worker and
    beat) on ``port``, its output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "runplatform", "--bind", f"127.0.0.1:{port}", "--web-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
