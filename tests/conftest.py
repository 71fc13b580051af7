"""Shared fixtures. Tests marked ``postgres`` need PostgreSQL as the default database: elsewhere
they are skipped, and under ``REQUIRE_POSTGRES=1`` (CI) they fail instead."""

import os

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import UserFactory

REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"


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

    app.conf.task_always_eager = True
    # Password hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _login_throttling_off(settings):
    """Tests log in many times, some with wrong passwords on purpose: django-axes would lock them
    out. The throttle's own tests (tests/security) turn it back on with ``login_throttling``."""
    settings.AXES_ENABLED = False


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
