"""A scheduler and workers that ride out outages.

* ``listener run`` against PostgreSQL through a local TCP proxy that is cut
  for 40 s (the probe: it exited rc 1 with an OperationalError): it keeps
  running, logs the outage once, ``listener health`` exits non-zero while it
  lasts, and what was appended meanwhile is stored once the database is back.
* A Celery worker and ``listener beat`` through proxies to PostgreSQL and
  Redis: a database outage and then a broker outage are ridden out by both.
* The pure parts: which errors are outages, the backoff, ``ride_out``.

These need the real services: when one is not reachable the test fails, naming it.
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from opsfixtures import (
    PYTHON,
    REDIS_URL,
    ROOT,
    base_config,
    fresh_pg_schema,
    listener_env,
    purge_queue,
    require_service,
    start_listener,
    stop,
    wait_for,
    write_config,
)
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from tcpproxy import TcpProxy

from listener import models as m
from listener.db import make_engine, migrate
from listener.errors import StorageError
from listener.outage import Outage, is_outage, ride_out

OUTAGE_S = 40.0


def social_line(i: int) -> str:
    return (
        json.dumps(
            {
                "id": f"p{i}",
                "text": f"Zephyr Shoes lost my order #{i}, furious",
                "author": f"customer{i}",
                "created_at": "2026-11-20T10:00:00Z",
            }
        )
        + "\n"
    )


def stored(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(m.Mention)).scalar() or 0)
    except Exception:
        return -1  # not migrated yet
    finally:
        engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_schema(prefix="outage") as url:
        yield url


def proxy_for(url: str) -> TcpProxy:
    parts = urlsplit(url.replace("+psycopg", ""))
    return TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)


def health(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "listener", "--config", str(config), "health"],
        cwd=ROOT,
        env=listener_env(config),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_listener_run_survives_a_40_s_database_outage(pg_url: str, tmp_path: Path) -> None:
    posts = tmp_path / "posts.jsonl"
    posts.write_text(social_line(1))
    with proxy_for(pg_url) as proxy:
        config = write_config(
            tmp_path / "config.yaml",
            base_config(
                proxy.url_for(pg_url),
                sources=[{"name": "social", "type": "jsonl", "path": str(posts), "interval": "1s"}],
            ),
        )
        log = tmp_path / "run.log"
        proc = start_listener(["run", "--max-sleep", "1"], config, log)
        try:
            wait_for(lambda: stored(pg_url) == 1, 60, "the first poll")
            assert health(config).returncode == 0

            proxy.cut()
            cut_at = time.monotonic()
            with posts.open("a") as fh:
                fh.write(social_line(2))
            time.sleep(3)
            during = health(config)
            assert during.returncode == 1, during.stdout + during.stderr
            assert "database unreachable" in during.stdout
            while time.monotonic() - cut_at < OUTAGE_S:
                assert proc.poll() is None, log.read_text()
                time.sleep(1)
            proxy.restore()

            wait_for(lambda: stored(pg_url) == 2, 60, "the post appended during the outage")
            assert proc.poll() is None, log.read_text()
            assert health(config).returncode == 0
        finally:
            rc = stop(proc)
        text = log.read_text()
        assert rc == 0, text
        assert text.count("database.unavailable") == 1, text
        assert text.count("database.restored") == 1, text
        assert "Traceback" not in text, text
        assert proxy.refused > 0  # it kept trying during the outage


@pytest.mark.slow
@pytest.mark.postgres
def test_worker_and_beat_survive_database_and_broker_outages(pg_url: str, tmp_path: Path) -> None:
    require_service("Redis", REDIS_URL)
    queue = f"outage-{uuid.uuid4().hex[:8]}"
    posts = tmp_path / "posts.jsonl"
    posts.write_text(social_line(1))
    redis = urlsplit(REDIS_URL)
    with proxy_for(pg_url) as db, TcpProxy(redis.hostname or "127.0.0.1", redis.port or 6379) as mq:
        config = write_config(
            tmp_path / "config.yaml",
            base_config(
                db.url_for(pg_url),
                sources=[{"name": "social", "type": "jsonl", "path": str(posts), "interval": "1s"}],
                workers={
                    "broker_url": mq.url_for(REDIS_URL),
                    "queue": queue,
                    "concurrency": 1,
                    "dispatch_interval": "1s",
                    "lease": "10s",
                    "visibility_timeout": "20s",
                },
            ),
        )
        migrate(make_engine(pg_url))  # once, before two processes start on a fresh schema
        worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
        worker = start_listener(["worker"], config, worker_log)  # prefork, the default
        beat = start_listener(["beat", "--no-classify"], config, beat_log)

        def logs() -> str:
            return "\n".join(
                f"--- {log.name}\n{log.read_text()[-6000:]}" for log in (worker_log, beat_log)
            )

        try:
            wait_for(lambda: stored(pg_url) == 1, 90, "the first poll through the workers", logs)

            db.cut()  # the database goes away for 15 s
            with posts.open("a") as fh:
                fh.write(social_line(2))
            time.sleep(15)
            for proc, log in ((worker, worker_log), (beat, beat_log)):
                assert proc.poll() is None, log.read_text()
            db.restore()
            wait_for(
                lambda: stored(pg_url) == 2, 90, "the post appended during the DB outage", logs
            )

            # the beat backs off while the database is away (2 s doubling): wait until it
            # has seen it back, or its next try can fall after the broker's outage below and
            # it never touches the broker while it is down
            wait_for(
                lambda: "database.restored" in beat_log.read_text(),
                60,
                "the beat to see the database back",
                logs,
            )
            mq.cut()  # then the broker, for 10 s
            with posts.open("a") as fh:
                fh.write(social_line(3))
            time.sleep(10)
            for proc, log in ((worker, worker_log), (beat, beat_log)):
                assert proc.poll() is None, log.read_text()
            mq.restore()
            wait_for(
                lambda: stored(pg_url) == 3, 120, "the post appended during the broker outage", logs
            )
        finally:
            beat_rc, worker_rc = stop(beat), stop(worker)
            purge_queue(REDIS_URL, queue)
        beat_text, worker_text = beat_log.read_text(), worker_log.read_text()
        assert beat_rc == 0, beat_text
        assert worker_rc == 0, worker_text
        # the beat logs each outage once, not once per tick
        assert beat_text.count("database.unavailable") == 1, beat_text
        assert beat_text.count("broker.unavailable") == 1, beat_text
        assert worker_text.count("database.unavailable") <= 1, worker_text


# ---------------------------------------------------------------------------
# the pure parts


class FakeOrig(Exception):
    pass


def sqlite_error(message: str) -> OperationalError:
    import sqlite3

    return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (OperationalError("SELECT 1", {}, FakeOrig("connection refused")), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (sqlite_error("database is locked"), True),
        (sqlite_error("no such table: mentions"), False),
        (IntegrityError("INSERT", {}, FakeOrig("duplicate key")), False),
        (ProgrammingError("SELECT", {}, FakeOrig("syntax error")), False),
        (ValueError("bad"), False),
        (StorageError("cannot reach database postgresql://x: refused"), True),
        (StorageError("cannot migrate database x: boom"), False),
    ],
)
def test_is_outage(exc: BaseException, outage: bool) -> None:
    assert is_outage(exc) is outage


def test_is_outage_follows_the_cause() -> None:
    try:
        try:
            raise ConnectionResetError("reset")
        except ConnectionResetError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as exc:
        assert is_outage(exc)


def test_kombu_and_redis_errors_are_outages() -> None:
    import kombu.exceptions
    import redis.exceptions

    assert is_outage(kombu.exceptions.OperationalError("broker down"))
    assert is_outage(redis.exceptions.ConnectionError("refused"))


def test_outage_logs_once_and_backs_off() -> None:
    events: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def error(self, event: str, **kw: Any) -> None:
            events.append((event, kw))

        def warning(self, event: str, **kw: Any) -> None:
            events.append((event, kw))

    clock = iter(range(100))
    outage = Outage(
        "database", base=1.0, cap=8.0, logger=Log(), rng=random.Random(0), clock=lambda: next(clock)
    )
    delays = [outage.failed(OperationalError("x", {}, FakeOrig("down"))) for _ in range(6)]
    assert [round(d / s) for d, s in zip(delays, [1, 2, 4, 8, 8, 8], strict=True)] == [1] * 6
    assert all(0.8 * s <= d <= 1.2 * s for d, s in zip(delays, [1, 2, 4, 8, 8, 8], strict=True))
    assert outage.down
    outage.recovered()
    outage.recovered()  # once only
    assert [e for e, _ in events] == ["database.unavailable", "database.restored"]
    assert events[1][1]["attempts"] == 6
    assert not outage.down and outage.failures == 0


def test_ride_out_retries_outages_only() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("down")
        return "ok"

    outage = Outage("database", base=0.01, cap=0.02)
    assert ride_out(flaky, outage) == "ok" and len(calls) == 3 and not outage.down

    def broken() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        ride_out(broken, Outage("database", base=0.01))

    stopping = threading.Event()
    stopping.set()
    with pytest.raises(InterruptedError):
        ride_out(
            lambda: (_ for _ in ()).throw(ConnectionRefusedError()), Outage("db"), stopping=stopping
        )
