"""Prometheus metrics and /healthz data (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opsfixtures import add_outbox_messages

from listener import models as m
from listener.health import health_status, health_verdict
from listener.locks import acquire_lock
from listener.metrics import (
    REGISTRY,
    DatabaseCollector,
    record_classified,
    record_poll,
    render,
)
from listener.pipeline import PollOutcome, poll_sources

SOCIAL = {"name": "social", "type": "jsonl", "path": "examples/social.jsonl"}


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    value = REGISTRY.get_sample_value(name, labels or {})
    return float(value or 0.0)


def test_record_poll_counts_by_source_and_outcome() -> None:
    src = "metrics-test-src"
    before_new = sample("listener_mentions_ingested_total", {"source": src})
    record_poll(PollOutcome(src, "ok", fetched=5, new=3, duration_ms=250.0))
    record_poll(PollOutcome(src, "error", error="boom", duration_ms=20.0))
    record_poll(PollOutcome(src, "deferred", error="429", duration_ms=10.0))
    record_poll(PollOutcome(src, "not_modified", duration_ms=5.0))
    assert sample("listener_mentions_ingested_total", {"source": src}) == before_new + 3
    assert sample("listener_polls_total", {"source": src, "status": "ok"}) >= 1
    assert sample("listener_poll_errors_total", {"source": src}) >= 1
    assert sample("listener_rate_limit_deferrals_total", {"source": src}) >= 1
    assert sample("listener_poll_duration_seconds_count", {"source": src}) >= 4
    assert sample("listener_poll_duration_seconds_sum", {"source": src}) >= 0.285 - 1e-9
    record_classified(64, "lexicon-test", 0.5)
    assert sample("listener_classified_total", {"model": "lexicon-test"}) >= 64
    text = render().decode()
    assert f'listener_polls_total{{source="{src}",status="deferred"}}' in text


def test_scheduler_round_records_metrics_and_database_gauges(make_app: Any) -> None:
    app = make_app({"sources": [SOCIAL]})
    outcomes = poll_sources(app, on_result=record_poll)
    assert outcomes[0].status == "ok" and outcomes[0].new > 0
    assert sample("listener_mentions_ingested_total", {"source": "social"}) >= outcomes[0].new
    gauges = {f.name: f.samples[0].value for f in DatabaseCollector(app).collect()}
    with app.sessions() as session:
        open_cases = session.query(m.Case).count()
    assert gauges["listener_database_up"] == 1
    assert gauges["listener_open_cases"] == open_cases > 0
    assert gauges["listener_outbox_backlog"] == 0


def test_health_status_reports_lock_failing_sources_and_backlog(make_app: Any) -> None:
    app = make_app(
        {"sources": [SOCIAL, {"name": "gone", "type": "jsonl", "path": "/nonexistent/posts.jsonl"}]}
    )
    poll_sources(app)
    add_outbox_messages(app, 2)
    now = datetime.now(UTC)
    acquire_lock(app, "ops-host:42", timedelta(seconds=60), now=now)
    status = health_status(app)
    assert status["ok"] is True and status["status"] == "ok"
    assert status["database"]["ok"] is True
    assert status["scheduler"]["owner"] == "ops-host:42" and status["scheduler"]["current"]
    assert [s["name"] for s in status["sources_failing"]] == ["gone"]
    assert status["outbox_backlog"] == 2
    assert status["open_cases"] >= 2


def test_health_status_when_the_database_is_unreachable(tmp_path: Any) -> None:
    from listener.app import App
    from listener.config import settings_from_dict

    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    app = App.from_settings(
        settings_from_dict({"brand": {"name": "X"}, "database": {"url": url}}, env={}),
        upgrade=False,
    )
    try:
        status = health_status(app)
    finally:
        app.close()
    assert status["ok"] is False and status["status"] == "database unreachable"
    assert status["database"]["ok"] is False and status["database"]["error"]
    assert health_verdict(True) == (True, "ok")
    up = {f.name: f.samples[0].value for f in DatabaseCollector(app).collect()}
    assert up == {"listener_database_up": 0}


def test_metrics_report_the_latest_watched_app(make_app: Any) -> None:
    from listener import metrics

    first, second = make_app(), make_app()
    metrics.watch_app(first)
    metrics.watch_app(second)
    assert metrics._watched[id(REGISTRY)].app is second
    assert "listener_database_up 1.0" in render().decode()
