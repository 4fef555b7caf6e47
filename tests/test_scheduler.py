"""``listener run`` as a real subprocess: polls, drafts and sends on schedule, stops cleanly on
SIGTERM, and refuses to run twice against one database."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer, Reply
from opsfixtures import (
    PYTHON,
    ROOT,
    SmtpSink,
    add_outbox_messages,
    base_config,
    kill_group,
    listener_env,
    rss_feed,
    start_listener,
    stop,
    wait_for,
    write_config,
)
from sqlalchemy import func, select

from listener import models as m
from listener.app import App
from listener.config import load_settings
from listener.locks import lock_holder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


def _app(config: Path) -> App:
    return App.from_settings(load_settings(config))


def _count(app: App, model: Any, *where: Any) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_run_polls_drafts_sends_and_stops_cleanly_on_sigterm(
    db_url: str, tmp_path: Path, feeds: FeedServer
) -> None:
    slow_body = rss_feed(7, 6)
    rss_type = {"Content-Type": "application/rss+xml"}
    slow_url = feeds.route("/slow.rss", Reply(200, slow_body, rss_type, delay=1.5))
    port = free_port()
    with SmtpSink() as sink:
        data = base_config(
            db_url,
            sources=[
                {
                    "name": "example-blogs",
                    "type": "feed",
                    "path": str(ROOT / "examples/blog.xml"),
                    "interval": "15m",
                },
                {
                    "name": "example-social",
                    "type": "jsonl",
                    "path": str(ROOT / "examples/social.jsonl"),
                    "interval": "5m",
                    "options": {"channel": "x_reply"},
                },
                {
                    "name": "slow-blog",
                    "type": "feed",
                    "url": slow_url,
                    "match_all": True,
                    "interval": "2s",
                },
            ],
            email={
                "host": "127.0.0.1",
                "port": sink.port,
                "security": "none",
                "from_address": "care@zephyrshoes.example",
            },
        )
        config = write_config(tmp_path / "config.yaml", data)
        app = _app(config)
        try:
            [message_id] = add_outbox_messages(app, 1)
            proc = start_listener(
                ["run", "--max-sleep", "0.5", "--metrics-port", str(port)],
                config,
                tmp_path / "run.log",
            )
            try:
                wait_for(lambda: sink.message_ids(), 60, "the approved reply to be sent")
                wait_for(
                    lambda: len(feeds.requests_to("/slow.rss")) >= 2,
                    60,
                    "a second poll of the slow feed (due every 2s)",
                )
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
                text = metrics.read().decode()
                proc.send_signal(signal.SIGTERM)  # the slow poll is in hand
                rc = proc.wait(timeout=30)
            finally:
                kill_group(proc)
            log = (tmp_path / "run.log").read_text()
            assert rc == 0, log
            assert "scheduler.stopped" in log
            # the database is consistent: lock released, nothing half-done, nothing twice
            assert lock_holder(app) is None
            assert _count(app, m.Mention, m.Mention.source.has(name="example-social")) > 0
            assert _count(app, m.Mention, m.Mention.source.has(name="example-blogs")) > 0
            assert _count(app, m.Draft) > 0
            assert _count(app, m.Mention, m.Mention.source.has(name="slow-blog")) == 6
            assert _count(app, m.Classification) == _count(app, m.Mention)
            with app.sessions() as session:
                msg = session.get_one(m.OutboxMessage, message_id)
                assert msg.status == "sent" and msg.attempts == 1
                assert (
                    session.scalar(
                        select(func.count())
                        .select_from(m.Source)
                        .where(m.Source.lease_owner.is_not(None))
                    )
                    == 0
                )
            assert len(sink.messages) == 1
            assert 'listener_polls_total{source="example-social",status="ok"} 1.0' in text
            assert "listener_open_cases" in text and "listener_poll_duration_seconds" in text
        finally:
            app.close()


def test_second_scheduler_refused_and_crashed_holder_taken_over(
    db_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "config.yaml", base_config(db_url))
    app = _app(config)
    try:
        first = start_listener(
            ["run", "--max-sleep", "0.5", "--lock-ttl", "3"], config, tmp_path / "first.log"
        )
        try:
            holder = wait_for(lambda: lock_holder(app), 60, "the first scheduler's lock")
            second = subprocess.run(
                [PYTHON, "-m", "listener", "--config", str(config), "run", "--once"],
                cwd=ROOT,
                env=listener_env(config),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode != 0
            assert f"another scheduler ({holder.owner}) holds the lock until" in second.stderr
            assert "stop it or wait" in second.stderr
            kill_group(first, signal.SIGKILL)  # a crash: the lock stays behind
            first.wait(timeout=10)
        finally:
            stop(first)
        stale = lock_holder(app)
        assert stale is not None and stale.owner == holder.owner
        time.sleep(max(0.0, (stale.expires_at - datetime.now(UTC)).total_seconds()) + 0.2)
        third = subprocess.run(
            [PYTHON, "-m", "listener", "--config", str(config), "run", "--once"],
            cwd=ROOT,
            env=listener_env(config),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert third.returncode == 0, third.stderr
        assert "round done" in third.stdout
        assert lock_holder(app) is None  # --once releases the lock it took over
    finally:
        app.close()
