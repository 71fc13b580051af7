"""A streaming replica serves what only reads (``DATABASE_REPLICA_URL``, core/replica.py).

The PostgreSQL primary and its standby are the test's own clusters (``initdb``, then
``pg_basebackup -R`` on another port). To see which database answered, the standby's replay is
paused: a merchant created afterwards exists on the primary only, so a list that shows it was read
from the primary and one that does not was read from the replica."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from django.db import DEFAULT_DB_ALIAS
from django.test import override_settings

from consumers.models import Card
from core.models import User
from core.replica import PIN_COOKIE, ReplicaRouter, replica_reads
from merchants.models import Merchant
from tests.cards.builders import license_number
from tests.faults.support import ROOT, PrivatePostgres, call, service_env, start_gunicorn, wait_until
from tests.net import free_port

PASSWORD = "a-long-passphrase"
TWO_DATABASES = {
    "default": {"ENGINE": "django.db.backends.postgresql", "NAME": "primary"},
    "replica": {"ENGINE": "django.db.backends.postgresql", "NAME": "standby"},
}


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")  # only the router reads them here
def test_reads_inside_replica_reads_go_to_the_replica_and_users_writes_and_migrations_to_the_primary():
    router = ReplicaRouter()
    with override_settings(DATABASES=TWO_DATABASES):
        assert router.db_for_read(Merchant) is None  # outside: the primary
        with replica_reads():
            assert router.db_for_read(Merchant) == "replica"
            assert router.db_for_read(Card) == "replica"
            assert router.db_for_read(User) is None  # the signed-in user and tokens: the primary
            assert router.db_for_write(Merchant) == DEFAULT_DB_ALIAS
        assert router.allow_migrate("replica", "merchants") is False
        assert router.allow_migrate(DEFAULT_DB_ALIAS, "merchants") is True
    with replica_reads():
        assert router.db_for_read(Merchant) is None  # no replica configured: one database


@pytest.fixture
def primary_and_standby():
    if not PrivatePostgres.available():
        message = "needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) for clusters of the test's own"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    primary, standby = PrivatePostgres(), PrivatePostgres()
    try:
        primary.init()
        primary.start()
        primary.createdb("platform")
        standby.init_standby_of(primary)
        standby.start()
        yield primary, standby
    finally:
        standby.remove()
        primary.remove()


def _caught_up(primary: PrivatePostgres, standby: PrivatePostgres) -> bool:
    (target,) = primary.query("SELECT pg_current_wal_lsn()::text")[0]
    (replayed,) = standby.query(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")[0]
    return bool(replayed)


def _merchant(port: int, n: int) -> tuple[int, str | None]:
    """Sign merchant ``n`` up, as a browser would (no token): the status and the pin cookie set."""
    body = {
        "username": f"shop{n}", "password": PASSWORD, "name": f"Replica Gym {n}",
        "license_number": license_number(900 + n), "category": "fitness", "district": "朝阳区",
        "address": f"{n} Guanghua Rd",
    }  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/v1/merchants", body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 201, response.read()[:500]
        response.read()
        cookie = response.getheader("Set-Cookie")
        return response.status, cookie.split(";")[0] if cookie else None
    finally:
        conn.close()


def _page(port: int, path: str, cookie: str | None = None) -> tuple[str, str | None]:
    """A page's HTML and which database read it (``X-Read-From``)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        html = response.read().decode()
        assert response.status == 200, html[:500]
        return html, response.getheader("X-Read-From")
    finally:
        conn.close()


def _names(answer) -> list[str]:
    assert answer.status == 200, answer
    return sorted(row["name"] for row in answer.body["results"])


def _regulator_token(env: dict[str, str]) -> str:
    """A regulator and its API token, made on the primary by the platform's own code."""
    script = (
        "from core.models import User; from core.services import user_create;"
        "from rest_framework.authtoken.models import Token;"
        f"u = user_create(username='inspector', password={PASSWORD!r}, role=User.Role.REGULATOR);"
        "print(Token.objects.create(user=u).key)"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.postgres
def test_the_public_record_and_the_regulators_lists_are_read_from_the_replica_and_a_writer_reads_the_primary(
    primary_and_standby, tmp_path
):
    primary, standby = primary_and_standby
    env = service_env(
        database_url=primary.url("platform"),
        broker_url=f"redis://127.0.0.1:{free_port()}/0",
        DATABASE_REPLICA_URL=standby.url("platform"),
    )
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    regulator = _regulator_token(env)
    server, port = start_gunicorn(env=env, log=tmp_path / "gunicorn.log", workers=1)
    try:
        _merchant(port, 1)
        wait_until(lambda: _caught_up(primary, standby), timeout=30, message=lambda: "the standby did not catch up")
        standby.query("SELECT pg_wal_replay_pause()")
        wait_until(
            lambda: standby.query("SELECT pg_get_wal_replay_pause_state()")[0][0] == "paused",
            timeout=30,
            message=lambda: "the standby's replay did not pause",
        )

        # A write goes to the primary (the standby is read-only: it would fail there) ...
        _, pin = _merchant(port, 2)
        assert pin is not None and pin.startswith(f"{PIN_COOKIE}=")
        listing = f"/api/v1/public/merchants?q={quote('Replica Gym')}"
        # ... and the lists that only read come from the standby, which has not replayed it.
        assert _names(call(port, "GET", listing)) == ["Replica Gym 1"]
        assert _names(call(port, "GET", "/api/v1/regulator/merchants", token=regulator)) == ["Replica Gym 1"]
        # What is not under REPLICA_READ_PATHS reads the primary: the new merchant signs in and
        # reads its own account at once.
        token = call(port, "POST", "/api/v1/auth/token", body={"username": "shop2", "password": PASSWORD})
        assert token.status == 200, token
        assert call(port, "GET", "/api/v1/me", token=token.body["token"]).status == 200
        # The public page too; but a browser that has just written reads the primary for a while.
        page, read_from = _page(port, "/p/merchants/?q=Replica")
        assert read_from == "replica" and "Replica Gym 1" in page and "Replica Gym 2" not in page
        page, read_from = _page(port, "/p/merchants/?q=Replica", cookie=pin)
        assert read_from is None and "Replica Gym 2" in page

        standby.query("SELECT pg_wal_replay_resume()")
        wait_until(lambda: _caught_up(primary, standby), timeout=30, message=lambda: "the standby did not catch up")
        assert _names(call(port, "GET", listing)) == ["Replica Gym 1", "Replica Gym 2"]
    finally:
        server.stop()
