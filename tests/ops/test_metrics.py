"""/metrics: request rates and latencies, and the platform's own gauges read at scrape time from a
world the test builds with the real services; refused unless configured, and bounded."""

from __future__ import annotations

import time
from datetime import date

import pytest
import time_machine
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from core import metrics as core_metrics
from core.services import heartbeat_record
from escrow.services import ledger_check_run
from merchants.services.settlement import settlement_run
from refunds.services import REFUND_TOPIC, refund_request
from regulator.services.actions import merchant_action_take
from tests.cards import builders
from tests.cards.test_redemptions import use
from tests.factories import UserFactory

TOKEN = "scrape-token-for-tests-0123456789"


def at(moment):
    return time_machine.travel(moment, tick=False)


def scrape(client: Client | None = None, **headers) -> dict[tuple[str, tuple], float]:
    """The scrape as {(sample name, sorted labels): value}."""
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def gauge(samples, metric: str, **labels) -> float:
    return samples[(f"prepaid_{metric}", tuple(sorted(labels.items())))]


@pytest.fixture
def scrapable(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    return settings


@pytest.fixture
def world(settings, django_capture_on_commit_callbacks):
    """On 2026-03-02 a gym (releases frozen by the regulator) serves 3 sessions and is settled the
    next night: its payout of 30,000 fen is held. On 2026-03-03 10:00 three cards are returned in
    cooling-off and their refunds wait in the outbox (no worker ran), and a fourth the bank refuses
    is given up: failed. The ledger is verified on 2026-03-09 at 03:20 and the worker's heartbeat
    last seen at 11:59:30."""
    gym = builders.merchant()
    pack = builders.session_pack(gym, price=100_000, sessions=10)
    with at("2026-02-20 10:00 +0800"):
        cards = [builders.paid_card(pack) for _ in range(3)]
    with at("2026-03-02 11:00 +0800"):
        for card in cards:
            use(card)
    regulator = UserFactory(role="regulator")
    with django_capture_on_commit_callbacks(execute=True):
        merchant_action_take(merchant_id=gym.pk, actor_id=regulator.pk, action="freeze_releases", reason="inspection")
    with at("2026-03-03 02:00 +0800"), django_capture_on_commit_callbacks(execute=True):
        settlement_run(day=date(2026, 3, 2))

    shop = builders.session_pack(builders.merchant(), price=50_000)
    with at("2026-03-03 10:00 +0800"):
        waiting = [builders.paid_card(shop) for _ in range(3)]
        for card in waiting:  # their outbox messages are never kicked: no on_commit runs here
            refund_request(consumer=card.consumer, card_id=card.pk, reason="cooling_off")
        settings.SANDBOX_REFUSE_REFUNDS, settings.OUTBOX_MAX_ATTEMPTS = True, 1
        refused = builders.paid_card(shop)
        with django_capture_on_commit_callbacks(execute=True):
            refund_request(consumer=refused.consumer, card_id=refused.pk, reason="cooling_off")
        settings.SANDBOX_REFUSE_REFUNDS = False
    with at("2026-03-09 03:20 +0800"):
        ledger_check_run()
    with at("2026-03-09 11:59:30 +0800"):
        heartbeat_record(name="worker")


SCRAPED_AT = "2026-03-09 12:00 +0800"
DAY = 24 * 3600


@pytest.mark.django_db
def test_the_scrape_reports_the_worlds_backlog_refunds_payouts_ledger_check_settlement_and_heartbeat(scrapable, world):
    with at(SCRAPED_AT):
        samples = scrape()
    assert gauge(samples, "outbox_backlog_messages", topic=REFUND_TOPIC) == 3
    assert gauge(samples, "outbox_backlog_messages", topic="payout.send") == 0
    assert gauge(samples, "outbox_oldest_pending_age_seconds", topic=REFUND_TOPIC) == 6 * DAY + 2 * 3600
    assert gauge(samples, "outbox_dead_messages") == 1
    assert gauge(samples, "refunds_failed") == 1
    assert gauge(samples, "refunds_pending") == 3
    assert gauge(samples, "refunds_overdue") == 4  # all four were due on 2026-03-08 at 10:00
    assert gauge(samples, "payouts_held") == 1
    assert gauge(samples, "payouts_held_fen") == 30_000
    assert gauge(samples, "payouts_failed") == 0
    assert gauge(samples, "ledger_check_ok") == 1
    assert gauge(samples, "ledger_check_problems") == 0
    assert gauge(samples, "ledger_check_age_seconds") == 8 * 3600 + 40 * 60
    assert gauge(samples, "settlement_last_done_age_seconds") == 6 * DAY + 10 * 3600
    assert gauge(samples, "settlement_last_done_day_timestamp_seconds") == 1772409600  # 2026-03-02
    assert gauge(samples, "settlement_runs_unfinished") == 0
    assert gauge(samples, "worker_heartbeat_age_seconds", name="worker") == 30
    for source in ("ledger", "outbox", "queues", "refunds", "settlement", "workers"):
        assert gauge(samples, "metrics_source_ok", source=source) == 1


@pytest.mark.django_db
def test_a_refund_paid_leaves_the_backlog_and_the_overdue_count(scrapable, world, django_capture_on_commit_callbacks):
    from core.outbox import outbox_deliver_many, outbox_due_ids

    with at(SCRAPED_AT):
        before = scrape()
        with django_capture_on_commit_callbacks(execute=True):
            outbox_deliver_many(message_ids=outbox_due_ids())
        after = scrape()
    assert gauge(before, "refunds_overdue") == 4 and gauge(after, "refunds_overdue") == 1  # the failed one
    assert gauge(after, "outbox_backlog_messages", topic=REFUND_TOPIC) == 0
    assert gauge(after, "outbox_oldest_pending_age_seconds", topic=REFUND_TOPIC) == 0


@pytest.mark.django_db
def test_an_empty_platform_has_no_ledger_check_or_settlement_age_to_report(scrapable):
    samples = scrape()
    names = {name for name, _ in samples}
    assert "prepaid_ledger_check_age_seconds" not in names  # never verified: absent, which the alert sees
    assert "prepaid_settlement_last_done_age_seconds" not in names
    assert gauge(samples, "refunds_overdue") == 0 and gauge(samples, "payouts_held") == 0


@pytest.mark.django_db
def test_requests_are_counted_by_status_and_timed_by_view(scrapable):
    client = Client()
    before = scrape(client)
    client.get("/livez")
    client.get("/no-such-page/")
    after = scrape(client)

    def count(samples, status):
        return samples.get(("django_http_responses_total_by_status_total", (("status", status),)), 0)

    assert count(after, "200") - count(before, "200") >= 2  # /livez and the first scrape
    assert count(after, "404") - count(before, "404") == 1
    key = ("django_http_requests_latency_seconds_by_view_method_count", (("method", "GET"), ("view", "livez")))
    assert after[key] - before.get(key, 0) == 1


@pytest.mark.django_db
def test_a_made_up_http_method_is_counted_under_one_label_not_a_series_of_its_own(scrapable):
    client = Client()
    key = (
        "django_http_requests_latency_seconds_by_view_method_count",
        (("method", "<invalid method>"), ("view", "livez")),
    )
    before = scrape(client).get(key, 0)  # the counters are the process's: earlier tests' requests count too
    made_up = ("BREW", "PROPFIND1", "X" * 20)
    for method in made_up:
        client.generic(method, "/livez")
    samples = scrape(client)
    methods = {dict(labels).get("method") for name, labels in samples if name.startswith("django_http_")}
    assert not methods & set(made_up), methods
    assert samples[key] - before == 3


# --- Who may scrape -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_token_or_addresses_configured_the_endpoint_does_not_exist(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    assert Client().get("/metrics").status_code == 404
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


@pytest.mark.django_db
def test_a_scrape_without_the_right_bearer_token_is_refused(scrapable):
    client = Client()
    missing = client.get("/metrics")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")
    assert b"prepaid_" not in missing.content
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


@pytest.mark.django_db
def test_allowed_addresses_alone_admit_their_network_and_refuse_others(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.1.0.0/16", "192.0.2.7"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.0.2.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.2.0.1").get("/metrics").status_code == 403


@pytest.mark.django_db
def test_with_a_token_and_addresses_a_scrape_needs_both(scrapable):
    scrapable.METRICS_ALLOWED_IPS = ["10.1.0.0/16"]
    bearer = f"Bearer {TOKEN}"
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics", HTTP_AUTHORIZATION=bearer).status_code == 200
    assert Client(REMOTE_ADDR="10.9.9.9").get("/metrics", HTTP_AUTHORIZATION=bearer).status_code == 403
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 401


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw(scrapable):
    scrapable.METRICS_TOKEN = ""
    scrapable.METRICS_ALLOWED_IPS = ["10.1.0.0/16"]
    scrapable.TRUSTED_PROXY_COUNT = 1
    proxy = Client(REMOTE_ADDR="172.18.0.2")
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.0.9").status_code == 200
    assert proxy.get("/metrics", HTTP_X_FORWARDED_FOR="10.1.0.9, 203.0.113.5").status_code == 403


# --- A broken or slow source ----------------------------------------------------------------------


@pytest.fixture
def extra_source():
    added = []

    def add(name, read, gauges):
        core_metrics.metrics_register(name, gauges=gauges, read=read)
        added.append(name)

    yield add
    for name in added:
        core_metrics.SOURCES.pop(name, None)


@pytest.mark.django_db
def test_a_failing_source_is_left_out_and_reported_while_the_others_are_served(scrapable, extra_source):
    def broken():
        raise RuntimeError("this source is broken")

    extra_source("broken", broken, [core_metrics.Gauge("broken_thing", "A gauge that cannot be read.")])
    samples = scrape()
    assert gauge(samples, "metrics_source_ok", source="broken") == 0
    assert gauge(samples, "metrics_source_ok", source="refunds") == 1
    assert ("prepaid_broken_thing", ()) not in samples


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_slow_query_is_cancelled_after_the_statement_timeout_and_the_scrape_still_answers(scrapable, extra_source):
    scrapable.METRICS_STATEMENT_TIMEOUT_MS = 300

    def slow():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(10)")
        return {"slow_thing": 1}

    extra_source("slow", slow, [core_metrics.Gauge("slow_thing", "A gauge whose query takes 10 s.")])
    started = time.monotonic()
    samples = scrape()
    assert time.monotonic() - started < 5
    assert gauge(samples, "metrics_source_ok", source="slow") == 0
    assert gauge(samples, "metrics_source_ok", source="refunds") == 1  # read after the cancelled one


def test_two_sources_cannot_register_the_same_gauge(extra_source):
    with pytest.raises(ValueError, match="refunds_failed"):
        extra_source("again", dict, [core_metrics.Gauge("refunds_failed", "Taken by the refunds source.")])


# --- Queue lengths -----------------------------------------------------------------------------------


def publish(count: int, *, url: str, options: dict) -> None:
    from kombu import Connection

    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue("celery")
        for n in range(count):
            queue.put({"n": n})
        queue.close()


@pytest.mark.django_db
def test_the_filesystem_brokers_queue_length_is_its_waiting_messages(scrapable, tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(tmp_path / "control"),  # else "control/" in the working folder
        "store_processed": False,
    }
    scrapable.CELERY_BROKER_URL = "filesystem://"
    scrapable.CELERY_BROKER_TRANSPORT_OPTIONS = options
    assert gauge(scrape(), "celery_queue_messages", queue="celery") == 0
    publish(4, url="filesystem://", options=options)
    assert gauge(scrape(), "celery_queue_messages", queue="celery") == 4


@pytest.mark.django_db
def test_the_redis_brokers_queue_length_is_its_waiting_messages(scrapable):
    import redis

    url = "redis://127.0.0.1:6379/13"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client.flushdb()
    scrapable.CELERY_BROKER_URL = url
    scrapable.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    try:
        assert gauge(scrape(), "celery_queue_messages", queue="celery") == 0
        publish(3, url=url, options={})
        assert gauge(scrape(), "celery_queue_messages", queue="celery") == 3
    finally:
        client.flushdb()
