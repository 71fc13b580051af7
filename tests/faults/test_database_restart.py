"""PostgreSQL crashes (``pg_ctl stop -m immediate``) under load and comes back: while it is down
every request answers at once with a clean 503 ``service_unavailable`` JSON body (no hang, no 500,
no HTML), nothing is half applied (every paid card's ``price == escrow_balance + released_total +
refunded_total``, the ledger verifies, each purchase made once however often it was retried), and
the clients succeed again once it is back.

The cluster is the test's own (``initdb`` into a temporary folder, a free port); the machine's
shared PostgreSQL is never touched. Clients retry a failed step with the same ``Idempotency-Key``,
as API.md asks of them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import psycopg2
import pytest

from tests.faults.support import (
    ROOT,
    Answer,
    PrivatePostgres,
    call,
    free_port,
    service_env,
    start_gunicorn,
    token_for,
)

pytestmark = pytest.mark.postgres

CLIENTS = 3
PASSWORD = "a-long-passphrase"
HANG_SECONDS = 10.0  # no answer may take longer than this, database down or not


@dataclass
class Client:
    """A consumer doing purchase → payment → service → confirmation, retrying each step with its
    key until it succeeds, and keeping every answer."""

    port: int
    name: str
    consumer: str
    merchant: str
    product: str
    answers: list[tuple[float, float, Answer]] = field(default_factory=list)  # (started, seconds, answer)
    flows_done: list[float] = field(default_factory=list)  # when each flow completed
    buys: int = 0
    failure: str = ""
    answered: list[tuple[str, str]] = field(default_factory=list)  # (what, id) of each step answered 2xx

    def step(self, method, path, *, token, body=None, key=None, ok=(200, 201)) -> Answer:
        deadline = time.monotonic() + 60
        while True:
            started = time.monotonic()
            try:
                answer = call(self.port, method, path, token=token, body=body, key=key, timeout=HANG_SECONDS + 20)
            except OSError as exc:  # gunicorn itself must stay up: a refused connection is a failure too
                answer = Answer(status=0, body=str(exc), content_type="")
            self.answers.append((started, time.monotonic() - started, answer))
            if answer.status in ok:
                return answer
            retryable = answer.status == 503 or answer.code() == "idempotency_request_in_progress"
            if not retryable or time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: {answer}")
            time.sleep(0.2)

    def flow(self, n: int) -> None:
        key = f"{self.name}-{n}"
        card = self.step("POST", "/api/v1/cards", token=self.consumer, body={"product": self.product}, key=f"buy-{key}")
        self.buys += 1
        self.answered.append(("bought", card.body["id"]))
        self.step(
            "POST", f"/api/v1/payments/{card.body['payment']['id']}/simulate", token=self.consumer,
            body={"outcome": "succeeded"}, key=f"pay-{key}",
        )  # fmt: skip
        self.answered.append(("paid", card.body["id"]))
        service = self.step(
            "POST", "/api/v1/redemptions", token=self.merchant, body={"card": card.body["id"]}, key=f"start-{key}"
        )
        self.answered.append(("requested", service.body["id"]))
        self.step("POST", f"/api/v1/redemptions/{service.body['id']}/confirm", token=self.consumer, key=f"ok-{key}")
        self.answered.append(("confirmed", service.body["id"]))
        self.flows_done.append(time.monotonic())

    def run(self, stop: threading.Event) -> None:
        n = 0
        try:
            while not stop.is_set():
                self.flow(n)
                n += 1
        except Exception as exc:  # noqa: BLE001 (reported by the test)
            self.failure = repr(exc)


@pytest.fixture
def cluster():
    if not PrivatePostgres.available():
        message = "needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin) for a cluster of the test's own"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        pg.createdb("platform")
        yield pg
    finally:
        pg.remove()


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def shop_and_clients(port: int, count: int) -> list[Client]:
    """A merchant with a product and ``count`` consumers, signed up through the API of ``port``."""
    merchant = call(port, "POST", "/api/v1/merchants", body={
        "username": "gym", "password": PASSWORD, "name": "Gym", "license_number": "91350100M000100Y43",
        "category": "fitness", "district": "朝阳区", "address": "1 Guanghua Rd",
    })  # fmt: skip
    assert merchant.status == 201, merchant
    shop = token_for(port, "gym", PASSWORD)
    product = call(port, "POST", "/api/v1/products", token=shop, body={
        "name": "10 sessions", "kind": "session_pack", "price": 100_000, "sessions": 10,
    })  # fmt: skip
    assert product.status == 201, product
    clients = []
    for n in range(count):
        body = {"username": f"c{n}", "password": PASSWORD, "display_name": f"C{n}", "phone": "13800001234"}
        assert call(port, "POST", "/api/v1/consumers", body=body).status == 201
        clients.append(
            Client(port=port, name=f"c{n}", consumer=token_for(port, f"c{n}", PASSWORD), merchant=shop,
                   product=product.body["id"])
        )  # fmt: skip
    return clients


def test_a_database_crash_under_load_answers_503_applies_nothing_by_half_and_recovers(cluster, tmp_path):
    env = service_env(database_url=cluster.url("platform"), broker_url=f"redis://127.0.0.1:{free_port()}/0")
    migrated = manage(env, "migrate", "-v0")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    server, port = start_gunicorn(env=env, log=tmp_path / "gunicorn.log", workers=2)
    try:
        clients = shop_and_clients(port, CLIENTS)

        stop = threading.Event()
        threads = [threading.Thread(target=client.run, args=(stop,)) for client in clients]
        for thread in threads:
            thread.start()
        time.sleep(2)
        crashed_at = time.monotonic()
        cluster.stop("immediate")  # a crash: no checkpoint, every backend killed
        time.sleep(3)
        cluster.start()
        back_at = time.monotonic()
        time.sleep(4)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        server.stop()

    answers = [item for client in clients for item in client.answers]
    for client in clients:
        assert not client.failure, client.failure
        # The clients succeed again once PostgreSQL is back: a whole flow after it.
        assert any(done > back_at for done in client.flows_done), (client.name, client.flows_done, back_at)
    during = [answer for started, _, answer in answers if crashed_at <= started < back_at]
    assert during, "no request was made while the database was down"
    assert {answer.status for answer in during} <= {200, 201, 503}, [a for a in during if a.status != 503][:5]
    refused = [answer for _, _, answer in answers if answer.status not in (200, 201)]
    assert any(answer.status == 503 for answer in refused), "the crash went unnoticed"
    for answer in refused:
        assert answer.status == 503 and answer.content_type.startswith("application/json"), answer
        assert answer.code() == "service_unavailable" and answer.body["detail"], answer
    slowest = max(seconds for _, seconds, _ in answers)
    assert slowest < HANG_SECONDS, f"a request took {slowest:.1f}s"

    # Nothing half applied: each purchase once, every card paid and served once, every balance whole.
    with psycopg2.connect(cluster.url("platform")) as db, db.cursor() as cursor:
        cursor.execute(
            "SELECT c.state, c.price, a.balance, c.released_total, c.refunded_total, c.sessions_remaining "
            "FROM consumers_card c JOIN escrow_account a ON a.id = c.escrow_account_id"
        )
        cards = cursor.fetchall()
    assert len(cards) == sum(client.buys for client in clients)
    for state, price, escrow, released, refunded, sessions in cards:
        assert (state, released, sessions) == ("active", 10_000, 9), (state, released, sessions)
        assert price == escrow + released + refunded
    verified = manage(env, "verify_ledger")
    assert verified.returncode == 0, verified.stdout + verified.stderr
