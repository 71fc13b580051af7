"""The Prometheus metrics endpoint (``/metrics``) and the gauges of the platform's own state.

Two kinds of metrics are served. Request rates and latencies are counted as requests pass, by
django-prometheus' two middlewares (``django_http_*``). The platform's own gauges are computed when
Prometheus scrapes: each app registers a *source* in its ``AppConfig.ready`` with
``metrics_register`` (as apps register outbox topics), so core, on the ground floor, serves the
refunds', payouts' and ledger's figures without importing their apps. A source is one function
that reads a few indexed aggregates and returns its gauges' values.

A scrape reads every source in one read-only transaction whose statements are each bounded by
``METRICS_STATEMENT_TIMEOUT_MS`` (PostgreSQL), each source in a savepoint of its own: a source that
fails or times out is logged and leaves its gauges out, ``prepaid_metrics_source_ok{source}`` says
0, and the others are still served.

The endpoint is refused unless it is configured: without ``METRICS_TOKEN`` and without
``METRICS_ALLOWED_IPS`` it answers 404 as if it did not exist. With a token, a request must carry
``Authorization: Bearer <token>`` (else 401); with addresses, it must come from one of them (else
403, the address read as the login throttle reads it, ``core.web.client_ip``); with both, both.

With several gunicorn workers each process counts its own requests: set
``PROMETHEUS_MULTIPROC_DIR`` (an empty folder, emptied at each start) and the endpoint adds up every
worker's counters (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.http import Http404, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core import clock, sql

log = logging.getLogger(__name__)

PREFIX = "prepaid_"

# A gauge's value: a number, None (left out: nothing to measure yet), or one number per label values.
Value = float | int | None | Mapping[tuple[str, ...], float | int]


@dataclass(frozen=True)
class Gauge:
    name: str  # without the "prepaid_" prefix
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    gauges: tuple[Gauge, ...]
    read: Callable[[], Mapping[str, Value]]
    database: bool = True  # read inside the scrape's transaction


SOURCES: dict[str, Source] = {}


def metrics_register(
    source: str, *, gauges: Sequence[Gauge], read: Callable[[], Mapping[str, Value]], database: bool = True
) -> None:
    """Register ``read``, which returns ``{gauge name: value}`` for ``gauges``, under ``source``."""
    taken = {gauge.name for name, other in SOURCES.items() if name != source for gauge in other.gauges}
    clash = taken & {gauge.name for gauge in gauges}
    if clash:
        raise ValueError(f"gauges {sorted(clash)} are registered by another source")
    SOURCES[source] = Source(gauges=tuple(gauges), read=read, database=database)


def age_seconds(moment: datetime | None) -> float | None:
    """Seconds from ``moment`` to now (never negative); None when there is no moment."""
    if moment is None:
        return None
    return max(0.0, (clock.now() - moment).total_seconds())


def _families(source: str, spec: Source, values: Mapping[str, Value]) -> Iterator[Metric]:
    for gauge in spec.gauges:
        value = values.get(gauge.name)
        if value is None:
            continue
        family = GaugeMetricFamily(PREFIX + gauge.name, gauge.help, labels=list(gauge.labels) or None)
        if isinstance(value, Mapping):
            for label_values, number in sorted(value.items()):
                family.add_metric(list(label_values), float(number))
        else:
            family.add_metric([], float(value))
        yield family


class PlatformCollector(Collector):
    """Every registered source, read now."""

    def collect(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily(
            PREFIX + "metrics_source_ok",
            "1 if the source's gauges were read in this scrape, 0 if it failed.",
            labels=["source"],
        )
        families: list[Metric] = []
        outermost = not connection.in_atomic_block
        with transaction.atomic():
            if outermost:  # inside a caller's transaction (a test's), the caller's rules hold
                sql.read_only_bounded(milliseconds=settings.METRICS_STATEMENT_TIMEOUT_MS)
            for name, spec in sorted(SOURCES.items()):
                try:
                    if spec.database:
                        with transaction.atomic():  # a savepoint: a failed statement spoils only this source
                            values = spec.read()
                    else:
                        values = spec.read()
                    read = list(_families(name, spec, values))
                except Exception:  # one broken source must not hide the others
                    log.exception("metrics: source %s failed", name)
                    ok.add_metric([name], 0.0)
                    continue
                ok.add_metric([name], 1.0)
                families.extend(read)
        yield from families
        yield ok


class _Registries:
    """The request metrics (this process's, or every worker's in multiprocess mode) and the
    platform's gauges, as one exposition."""

    def __init__(self, *collectors) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def _request_metrics():
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    return registry


def metrics_exposition() -> bytes:
    """The text Prometheus scrapes."""
    return generate_latest(_Registries(_request_metrics(), PlatformCollector()))


# --- Who may scrape ---------------------------------------------------------------------------


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(item, strict=False) for item in settings.METRICS_ALLOWED_IPS]


def metrics_refusal(request) -> int | None:
    """None if ``request`` may read the metrics, else the status to answer (404: not configured)."""
    from core.web import client_ip

    token = settings.METRICS_TOKEN
    networks = _networks()
    if not token and not networks:
        return 404
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return 401
    if networks:
        try:
            address = ipaddress.ip_address(client_ip(request) or "")
        except ValueError:
            return 403
        if not any(address in network for network in networks):
            return 403
    return None


@require_GET
def metrics(request):
    refusal = metrics_refusal(request)
    if refusal == 404:
        raise Http404
    if refusal == 401:
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if refusal == 403:
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)


# --- Core's own gauges ------------------------------------------------------------------------


def _outbox_read() -> dict[str, Value]:
    from django.db.models import Count, Min

    from core.models import OutboxMessage
    from core.outbox import TOPICS

    backlog: dict[tuple[str, ...], float | int] = {(topic,): 0 for topic in TOPICS}
    oldest: dict[tuple[str, ...], float | int] = {(topic,): 0 for topic in TOPICS}
    rows = (
        OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING)
        .values("topic")
        .annotate(count=Count("pk"), oldest=Min("created_at"))
        .order_by()
    )
    for row in rows:
        backlog[(row["topic"],)] = row["count"]
        oldest[(row["topic"],)] = age_seconds(row["oldest"]) or 0
    dead = OutboxMessage.objects.filter(state=OutboxMessage.State.DEAD).count()
    return {
        "outbox_backlog_messages": backlog,
        "outbox_oldest_pending_age_seconds": oldest,
        "outbox_dead_messages": dead,
    }


def _heartbeats_read() -> dict[str, Value]:
    from core.models import WorkerHeartbeat

    ages: dict[tuple[str, ...], float | int] = {
        (name,): age_seconds(seen) or 0 for name, seen in WorkerHeartbeat.objects.values_list("name", "last_seen")
    }
    return {"worker_heartbeat_age_seconds": ages}


def celery_queue_names() -> list[str]:
    from celery import current_app

    return sorted(current_app.amqp.queues.keys()) or [current_app.conf.task_default_queue]


def _queues_read() -> dict[str, Value]:
    """Messages waiting in each Celery queue, asked of the broker (Redis: the list's length, with
    its priority lists; the embedded filesystem broker: its files). None with the in-memory
    broker, whose queues live in another process's memory."""
    if settings.CELERY_BROKER_URL.startswith("memory://"):
        return {"celery_queue_messages": None}
    from kombu import Connection
    from kombu.exceptions import ChannelError

    options = {
        **getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}),
        "socket_timeout": 2,
        "socket_connect_timeout": 2,
    }
    lengths: dict[tuple[str, ...], float | int] = {}
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=2, transport_options=options) as conn:
        channel = conn.default_channel
        for queue in celery_queue_names():
            try:
                lengths[(queue,)] = channel.queue_declare(queue=queue, passive=True).message_count
            except ChannelError:  # Redis forgets an empty queue: nothing waits in it
                lengths[(queue,)] = 0
    return {"celery_queue_messages": lengths}


def core_metrics_register() -> None:
    metrics_register(
        "outbox",
        gauges=[
            Gauge("outbox_backlog_messages", "Outbox messages waiting to be delivered, by topic.", ("topic",)),
            Gauge(
                "outbox_oldest_pending_age_seconds",
                "Age of the oldest outbox message still waiting, by topic (0: none waits).",
                ("topic",),
            ),
            Gauge("outbox_dead_messages", "Outbox messages given up after every attempt, waiting for an operator."),
        ],
        read=_outbox_read,
    )
    metrics_register(
        "workers",
        gauges=[
            Gauge(
                "worker_heartbeat_age_seconds",
                "Seconds since the background process last proved it runs (beat scheduled, the worker ran).",
                ("name",),
            )
        ],
        read=_heartbeats_read,
    )
    metrics_register(
        "queues",
        gauges=[Gauge("celery_queue_messages", "Tasks waiting in each Celery queue of the broker.", ("queue",))],
        read=_queues_read,
        database=False,
    )
