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

import time

import psycopg2
import pytest

from tests.faults.support import (
    free_port,
    primary_with_standby,
    service_env,
    start_gunicorn,
)
from tests.faults.test_database_restart import clients_through, manage, outage_answered, shop_and_clients

pytestmark = pytest.mark.postgres

CLIENTS = 3


@pytest.fixture
def primary_and_standby():
    with primary_with_standby(synchronous=True) as clusters:
        yield clusters


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

        def failover() -> None:
            primary.stop("immediate")  # the primary's machine is gone
            time.sleep(2)
            standby.promote()

        lost_at, promoted_at = clients_through(clients, failover)
    finally:
        server.stop()

    outage_answered(clients, down_at=lost_at, back_at=promoted_at)

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
