"""Prometheus metrics: one registry, the metric objects, and helpers to record them.

Recorded where the work happens (the scheduler and the Celery tasks call
:func:`record_poll`, :func:`record_classified`, :func:`record_sent`); the
database-derived gauges (open cases, outbox backlog, failing sources) are
computed at scrape time by :class:`DatabaseCollector` once an App is
registered with :func:`watch_app`.

Exposed by the web app at ``/metrics`` (``make_asgi_app(registry=REGISTRY)``)
and by ``listener run`` / ``listener worker`` with ``--metrics-port`` via
:func:`serve`.  Celery's prefork children share their numbers through
``PROMETHEUS_MULTIPROC_DIR`` (``listener worker --metrics-port`` sets it), which
must be set *before* this module is first imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from listener.app import App
    from listener.pipeline import PollOutcome

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Every Listener metric lives here (not in prometheus_client's global registry).
REGISTRY = CollectorRegistry(auto_describe=True)

POLL_DURATION = Histogram(
    "listener_poll_duration_seconds",
    "Time to collect and store one source.",
    ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
POLLS = Counter(
    "listener_polls_total",
    "Polls by source and outcome.",
    ["source", "status"],
    registry=REGISTRY,
)
MENTIONS_INGESTED = Counter(
    "listener_mentions_ingested_total", "New mentions stored.", ["source"], registry=REGISTRY
)
POLL_ERRORS = Counter(
    "listener_poll_errors_total",
    "Failed polls (network, HTTP, parse, credentials).",
    ["source"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "listener_rate_limit_deferrals_total",
    "Polls deferred by a rate limit or budget.",
    ["source"],
    registry=REGISTRY,
)
CLASSIFIED = Counter(
    "listener_classified_total",
    "Mentions classified by worker re-classification tasks.",
    ["model"],
    registry=REGISTRY,
)
CLASSIFY_DURATION = Histogram(
    "listener_classify_batch_seconds",
    "Time to classify and store one batch.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
    registry=REGISTRY,
)
SENT = Counter(
    "listener_outbox_sent_total",
    "Outbox messages handled by workers, by result.",
    ["result"],
    registry=REGISTRY,
)


def record_poll(outcome: PollOutcome) -> None:
    """Count one poll outcome (``PollOutcome`` from the pipeline)."""
    if outcome.status in ("skipped", "disabled") and not outcome.duration_ms:
        POLLS.labels(outcome.source, outcome.status).inc()
        return
    POLLS.labels(outcome.source, outcome.status).inc()
    POLL_DURATION.labels(outcome.source).observe(max(0.0, outcome.duration_ms) / 1000.0)
    if outcome.new:
        MENTIONS_INGESTED.labels(outcome.source).inc(outcome.new)
    if outcome.status == "error" or (outcome.status == "disabled" and outcome.error):
        POLL_ERRORS.labels(outcome.source).inc()
    elif outcome.status == "deferred":
        RATE_LIMITED.labels(outcome.source).inc()


def record_classified(count: int, model: str, seconds: float) -> None:
    """Count a re-classification batch."""
    if count:
        CLASSIFIED.labels(model).inc(count)
    CLASSIFY_DURATION.observe(seconds)


def record_sent(result: str) -> None:
    """Count one outbox message handled by a worker (sent, skipped, failed…)."""
    SENT.labels(result).inc()


# ---------------------------------------------------------------------------
# database gauges, computed on scrape


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time: queue size, backlog, failing sources."""

    def __init__(self, app: App) -> None:
        self.app = app

    def describe(self) -> list[Any]:
        return []  # dynamic: never collected at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from listener.health import database_gauges

        try:
            gauges = database_gauges(self.app)
        except Exception:  # the DB is down: /healthz says so; scrapes must not fail
            up = GaugeMetricFamily("listener_database_up", "Whether the database answers.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("listener_database_up", "Whether the database answers.")
        up.add_metric([], 1)
        yield up
        cases = GaugeMetricFamily("listener_open_cases", "Open cases in the queue.")
        cases.add_metric([], gauges["open_cases"])
        yield cases
        backlog = GaugeMetricFamily("listener_outbox_backlog", "Approved messages not yet sent.")
        backlog.add_metric([], gauges["outbox_backlog"])
        yield backlog
        failing = GaugeMetricFamily("listener_sources_failing", "Sources whose last poll failed.")
        failing.add_metric([], gauges["sources_failing"])
        yield failing


_watched: dict[int, DatabaseCollector] = {}


def watch_app(app: App, registry: CollectorRegistry | None = None) -> None:
    """Report the database gauges of ``app`` (the latest one given) from the registry."""
    reg = registry or REGISTRY
    key = id(reg)
    if key in _watched:
        _watched[key].app = app
        return
    collector = DatabaseCollector(app)
    reg.register(collector)
    _watched[key] = collector


def exposition_registry() -> CollectorRegistry:
    """The registry to expose: ours, or an aggregate of every process's files in multiprocess
    mode (plus the database gauges, which the parent computes)."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    from prometheus_client import multiprocess

    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg)
    for collector in _watched.values():
        reg.register(collector)
    return reg


def serve(port: int, addr: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread."""
    start_http_server(port, addr=addr, registry=exposition_registry())


def render() -> bytes:
    """The metrics in the Prometheus text format (for a plain route handler)."""
    return generate_latest(exposition_registry())
