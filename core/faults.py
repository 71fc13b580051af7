"""Fault points for crash tests: ``fault_point("name")`` kills this process with SIGKILL when the
environment variable ``FAULT_KILL_AT`` names that point, and does nothing otherwise.

The crash tests run a real job in a subprocess with ``FAULT_KILL_AT`` set, so the process dies at
exactly the step under test (after the gateway paid, before the database recorded it, ...), then
run the job again and check that nothing happened twice and nothing was left behind.
"""

import os
import signal

_TARGET = os.environ.get("FAULT_KILL_AT", "")


def fault_point(name: str) -> None:
    if _TARGET and name == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
