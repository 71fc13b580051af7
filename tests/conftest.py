"""Shared fixtures. Tests marked ``postgres`` need PostgreSQL as the default database: elsewhere
they are skipped, and under ``REQUIRE_POSTGRES=1`` (CI) they fail instead."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import UserFactory

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _postgres_policy(request):
    if request.node.get_closest_marker("postgres") is None:
        return
    if connection.vendor != "postgresql":
        message = f"needs PostgreSQL; DATABASE_URL is {connection.vendor}"
        if REQUIRE_POSTGRES:
            pytest.fail(f"REQUIRE_POSTGRES=1 but this test {message}")
        pytest.skip(message)


@pytest.fixture(autouse=True)
def _tasks_run_inline_and_fast_hashing(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # Celery copies its configuration from the settings once, at first use: whatever ran first (a
    # module-scoped fixture, a subprocess helper) must not leave the tasks going to the broker.
    from config.celery import app

    app.set_current()  # the project's shared tasks send through the current app: never a test's own
    app.conf.task_always_eager = True
    # This process is never a worker, but a worker an earlier test started in it (an embedded one,
    # tests/ops/test_request_id_logs.py) can leave Celery's "a join would block" flag set, and then
    # every eager result's get() raises "Never call result.get() within a task!".
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)
    # Password hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _login_throttling_off(settings):
    """Tests log in many times, some with wrong passwords on purpose: django-axes would lock them
    out. The throttle's own tests (tests/security) turn it back on with ``login_throttling``."""
    settings.AXES_ENABLED = False


@pytest.fixture(autouse=True)
def _cache_cleared():
    """Each test starts with an empty cache: the public record's rate-limit counts and cached
    records (regulator.ratelimit, regulator.selectors.public) do not carry from one test to the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def login_throttling(settings, _login_throttling_off):
    settings.AXES_ENABLED = True


@pytest.fixture
def api():
    return APIClient()


def client_for(user) -> APIClient:
    from rest_framework.authtoken.models import Token

    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def regulator(db):
    return UserFactory(role="regulator")


@pytest.fixture
def consumer(db):
    return UserFactory(role="consumer")


@pytest.fixture
def merchant_user(db):
    return UserFactory(role="merchant")


@pytest.fixture
def embedded_env(tmp_path):
    """The environment of `make run`'s embedded default (SQLite and the filesystem broker under a
    fresh VAR_DIR), migrated: for tests that start the platform's processes themselves."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REQUIRE_POSTGRES"}}
    env.update(
        {"DJANGO_DEBUG": "1", "VAR_DIR": str(tmp_path / "var"), "HEARTBEAT_SECONDS": "2", "PYTHONUNBUFFERED": "1"}
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    return env


def pytest_collection_modifyitems(items):
    """schemathesis names each operation's test ``test_x[GET /path]`` but gives them all the
    function's node id (tests/security/test_schema_fuzz.py: 116 items, one id). pytest-xdist
    schedules tests by node id, so ``make test`` would run one of them: each gets its name's."""
    for item in items:
        if "[" in item.name and "[" not in item.nodeid:  # pytest 9 builds the id from ``originalname``
            item._id = item._id.with_params(item.name.split("[", 1)[1].removesuffix("]"))


def pytest_collection_finish(session):
    """Two tests with one node id would be one test to pytest-xdist (``make test``): refuse the run."""
    seen: dict[str, int] = {}
    for item in session.items:
        seen[item.nodeid] = seen.get(item.nodeid, 0) + 1
    twice = sorted(nodeid for nodeid, count in seen.items() if count > 1)
    if twice:
        raise pytest.UsageError(f"{len(twice)} node ids name more than one test, e.g. {twice[0]}")
