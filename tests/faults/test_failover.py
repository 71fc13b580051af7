"""The primary is lost under load and its synchronous standby is promoted: no acknowledged fen is lost.

Two clusters of the test's own: a primary whose commits wait for its standby
(``synchronous_standby_names``, ``synchronous_commit = on``: a commit returns once the standby has
the WAL on disk), and that standby (``pg_basebackup -R``). The platform connects through a libpq
multi-host URL with ``target_session_attrs=read-write``: each new connection takes the first host
that accepts writes. Clients buy, pay, ask for and confirm services, retrying a 503 with the same
``Idempotency-Key``; the primary is stopped (``-m immediate``, as a lost machine) and the standby
promoted. Then every step a client was answered 2xx for is on the new primary, the ledger
verifies there, and the clients saw nothing but 2xx and clean 503s."""

from __future__ import annotations

import os
import threading
import time

import psycopg2
import pytest

from tests.faults.support import PrivatePostgres, free_port, service_env, start_gunicorn, wait_until
from tests.faults.test_database_restart import HANG_SECONDS, manage, shop_and_clients

pytestmark = pytest.mark.postgres

CLIENTS = 3


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
        standby.init_standby_of(primary, name="standby1")
        standby.start()
        # From now on a commit on the primary returns once the standby has its WAL on disk.
        primary.query("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
        primary.query("ALTER SYSTEM SET synchronous_commit = 'on'")
        primary.query("SELECT pg_reload_conf()")
        wait_until(
            lambda: (
                primary.query("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'")
                == [("sync",)]
            ),
            timeout=30,
            message=lambda: f"the standby is not synchronous: {primary.query('SELECT * FROM pg_stat_replication')}",
        )
        yield primary, standby
    finally:
        standby.remove()
        primary.remove()


def test_a_promoted_synchronous_standby_has_every_acknowledged_operation_and_clients_saw_clean_503s(
    primary_and_standby, tmp_path
):
    primary, standby = primary_and_standby
    both = (
        f"postgres://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/platform"
        "?target_session_attrs=read-write&connect_timeout=3"
    )
    env = service_env(database_url=both, broker_url=f"redis://127.0.0.1:{free_port()}/0")
    migrated = manage(env, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    server, port = start_gunicorn(env=env, log=tmp_path / "gunicorn.log", workers=2)
    try:
        clients = shop_and_clients(port, CLIENTS)
        stop = threading.Event()
        threads = [threading.Thread(target=client.run, args=(stop,)) for client in clients]
        for thread in threads:
            thread.start()
        time.sleep(3)
        lost_at = time.monotonic()
        primary.stop("immediate")  # the primary's machine is gone
        time.sleep(2)
        standby.promote()
        promoted_at = time.monotonic()
        time.sleep(5)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.stop()

    answers = [item for client in clients for item in client.answers]
    for client in clients:
        assert not client.failure, client.failure
        assert any(done > promoted_at for done in client.flows_done), (client.name, client.flows_done, promoted_at)
    during = [answer for started, _, answer in answers if lost_at <= started < promoted_at]
    assert during, "no request was made while there was no primary"
    refused = [answer for _, _, answer in answers if answer.status not in (200, 201)]
    assert any(answer.status == 503 for answer in refused), "the failover went unnoticed"
    for answer in refused:
        assert answer.status == 503 and answer.content_type.startswith("application/json"), answer
        assert answer.code() == "service_unavailable", answer
    assert max(seconds for _, seconds, _ in answers) < HANG_SECONDS

    # Every step answered 2xx before or after the failover is on the promoted standby.
    answered = [item for client in clients for item in client.answered]
    assert any(what == "confirmed" for what, _ in answered)
    with psycopg2.connect(standby.url("platform")) as db, db.cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone() == (False,)
        cursor.execute("SELECT id::text, paid_at IS NOT NULL FROM consumers_card")
        cards = dict(cursor.fetchall())
        cursor.execute("SELECT id::text, state FROM consumers_redemption")
        redemptions = dict(cursor.fetchall())
    lost = []
    for what, pk in answered:
        present = {
            "bought": pk in cards,
            "paid": cards.get(pk) is True,
            "requested": pk in redemptions,
            "confirmed": redemptions.get(pk) == "confirmed",
        }[what]
        if not present:
            lost.append((what, pk))
    assert not lost, f"acknowledged but not on the promoted standby: {lost[:10]}"
    assert len(cards) == sum(client.buys for client in clients)  # each purchase once, retries included
    verified = manage(env, "verify_ledger")
    assert verified.returncode == 0, verified.stdout + verified.stderr
