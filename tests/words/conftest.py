import pytest
import time_machine

from tests.security.world import NOW, build_world


@pytest.fixture
def world(db):
    """The city of tests/security/world.py, with the clock frozen at its ``NOW``."""
    with time_machine.travel(NOW, tick=False):
        yield build_world()
