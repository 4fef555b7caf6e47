"""Celery workers as real processes against real PostgreSQL, Redis and RabbitMQ.

* Two workers and a beat poll 50 local feeds and a local X server and send 20
  approved email replies: every mention is stored once, every source is
  polled once, every reply is delivered once.
* A worker killed with SIGKILL in the middle of a poll: the task is
  redelivered to another worker, and nothing is lost or stored twice.

These need the services: when one is not reachable the test fails, naming it.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer, Reply
from opsfixtures import (
    AMQP_URL,
    PYTHON,
    REDIS_URL,
    ROOT,
    SmtpSink,
    add_outbox_messages,
    base_config,
    fresh_pg_schema,
    kill_group,
    listener_env,
    purge_queue,
    require_service,
    rss_feed,
    start_listener,
    stop,
    wait_for,
    write_config,
    write_feeds,
)
from sqlalchemy import func, select

from listener import models as m
from listener.app import App
from listener.config import load_settings

BROKERS = {"redis": ("Redis", REDIS_URL), "rabbitmq": ("RabbitMQ", AMQP_URL)}
FEEDS, ITEMS, REPLIES = 50, 8, 20


def mentions_and_polls(app: App) -> tuple[dict[str, int], dict[str, int]]:
    """Mentions stored per source name, and how often each source was polled."""
    with app.sessions() as session:
        per_source = dict(
            session.execute(
                select(m.Source.name, func.count(m.Mention.id))
                .join(m.Mention, m.Mention.source_id == m.Source.id)
                .group_by(m.Source.name)
            ).all()
        )
        polls = dict(session.execute(select(m.Source.name, m.Source.polls_total)).all())
    return per_source, polls


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_pg_schema() as url:
        yield url


def broker_config(kind: str, queue: str) -> dict[str, Any]:
    name, url = BROKERS[kind]
    require_service(name, url)
    return {
        "broker_url": url,
        "queue": queue,
        "concurrency": 2,
        "prefetch_multiplier": 1,
        "visibility_timeout": "4s",  # Redis: an unacked task comes back quickly in tests
        "dispatch_interval": "1s",
        "lease": "3s",
    }


def count(app: App, model: Any, *where: Any) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def sources_done(app: App, names: list[str]) -> bool:
    with app.sessions() as session:
        done = session.scalar(
            select(func.count())
            .select_from(m.Source)
            .where(m.Source.name.in_(names), m.Source.last_success_at.is_not(None))
        )
    return done == len(names)


def _lock_names(app: App) -> set[str]:
    with app.sessions() as session:
        return set(session.scalars(select(m.SchedulerLock.name)))


def task_ids(log: str, state: str = "received") -> set[str]:
    return set(re.findall(r"listener\.poll_source\[([0-9a-f-]+)\] " + state, log))


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_two_workers_store_every_mention_once_and_send_every_reply_once(
    broker: str, pg_url: str, tmp_path: Path, shared_data: Path
) -> None:
    from xserver import TEST_ENV, X_BLOCK, XServer

    queue = f"listener-test-{uuid.uuid4().hex[:8]}"
    workers = broker_config(broker, queue)
    paths = write_feeds(tmp_path / "feeds", FEEDS, ITEMS)
    procs = []
    with (
        FeedServer({"feeds": tmp_path / "feeds"}) as feeds,
        SmtpSink() as sink,
        XServer(shared_data / "x-api") as xsrv,
    ):
        sources = [
            {
                "name": f"blog{n:03d}",
                "type": "feed",
                "url": feeds.file_url("feeds", p.name),
                "match_all": True,
                "interval": "1h",
            }
            for n, p in enumerate(paths)
        ]
        sources.append(
            {
                "name": "x-search",
                "type": "x_search",
                "query": "Tweepy",
                "match_all": True,
                "interval": "1h",
            }
        )
        data = base_config(
            pg_url,
            sources=sources,
            workers=workers,
            x={"api_base_url": xsrv.base_url, **X_BLOCK},
            email={
                "host": "127.0.0.1",
                "port": sink.port,
                "security": "none",
                "from_address": "care@zephyrshoes.example",
            },
        )
        config = write_config(tmp_path / "config.yaml", data)
        app = App.from_settings(load_settings(config, env=TEST_ENV))
        try:
            message_ids = add_outbox_messages(app, REPLIES)
            for i in (1, 2):
                procs.append(
                    start_listener(
                        ["worker", "-c", "2", "-n", f"w{i}@%h", "--loglevel", "INFO"],
                        config,
                        tmp_path / f"worker{i}.log",
                        **TEST_ENV,
                    )
                )
            procs.append(
                start_listener(
                    ["beat", "--interval", "1"], config, tmp_path / "beat.log", **TEST_ENV
                )
            )
            names = [s["name"] for s in sources]
            wait_for(lambda: "beat" in _lock_names(app), 60, "the beat's lock")
            again = subprocess.run(
                [PYTHON, "-m", "listener", "--config", str(config), "beat"],
                cwd=ROOT,
                env=listener_env(config, **TEST_ENV),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert again.returncode != 0 and "another beat (" in again.stderr, again.stderr

            def finished() -> bool:
                return (
                    sources_done(app, names)
                    and count(app, m.OutboxMessage, m.OutboxMessage.status == "sent") == REPLIES
                )

            try:
                wait_for(finished, 120, "every source polled and every reply sent")
            except AssertionError:
                for p in tmp_path.glob("*.log"):
                    print(p.name, p.read_text()[-3000:])
                raise
            time.sleep(3)  # a few more beats: nothing may be polled or sent a second time
        finally:
            rcs = [stop(p) for p in procs]
            purge_queue(workers["broker_url"], queue)
        logs = {p.name: p.read_text() for p in tmp_path.glob("*.log")}
        try:
            assert rcs[-1] == 0, logs["beat.log"]
            # every mention once: 8 per feed, each classified once, each source polled once
            per_source, polls = mentions_and_polls(app)
            with app.sessions() as session:
                leases = session.scalar(
                    select(func.count())
                    .select_from(m.Source)
                    .where(m.Source.lease_owner.is_not(None))
                )
            assert all(per_source[f"blog{n:03d}"] == ITEMS for n in range(FEEDS))
            assert per_source.get("x-search", 0) > 0
            assert all(polls[name] == 1 for name in names), polls
            assert leases == 0
            assert count(app, m.Classification) == count(app, m.Mention)
            opened = count(app, m.Event, m.Event.kind == "case.opened")
            assert opened == count(app, m.Case) - REPLIES  # the replies' cases were made here
            # every reply sent once: one SMTP delivery per message, one attempt each
            ids = sink.message_ids()
            assert len(ids) == REPLIES and len(set(ids)) == REPLIES
            with app.sessions() as session:
                rows = session.scalars(
                    select(m.OutboxMessage).where(m.OutboxMessage.id.in_(message_ids))
                ).all()
            assert all(r.status == "sent" and r.attempts == 1 for r in rows)
            # the work really was shared between the two worker processes
            assert "succeeded" in logs["worker1.log"] and "succeeded" in logs["worker2.log"]
        finally:
            app.close()


@pytest.mark.slow
@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
def test_killed_worker_task_is_redelivered_without_loss_or_duplicates(
    broker: str, pg_url: str, tmp_path: Path
) -> None:
    queue = f"listener-test-{uuid.uuid4().hex[:8]}"
    workers = broker_config(broker, queue)
    paths = write_feeds(tmp_path / "feeds", 4, ITEMS)
    with FeedServer({"feeds": tmp_path / "feeds"}) as feeds:
        slow = feeds.route(
            "/slow.rss",
            Reply(200, rss_feed(99, 10), {"Content-Type": "application/rss+xml"}, delay=4),
        )
        sources = [
            {"name": "a-slow", "type": "feed", "url": slow, "match_all": True, "interval": "1h"}
        ]
        sources += [
            {
                "name": f"blog{n}",
                "type": "feed",
                "url": feeds.file_url("feeds", p.name),
                "match_all": True,
                "interval": "1h",
            }
            for n, p in enumerate(paths)
        ]
        names = [s["name"] for s in sources]
        config = write_config(
            tmp_path / "config.yaml", base_config(pg_url, sources=sources, workers=workers)
        )
        settings = load_settings(config)
        app = App.from_settings(settings)
        first = second = None
        try:
            first = start_listener(
                ["worker", "-c", "1", "-n", "doomed@%h"], config, tmp_path / "doomed.log"
            )
            from listener.tasks import configure_from, enqueue_due

            configure_from(settings)
            plan = enqueue_due(app, classify=False)
            assert plan["sources"][0] == "a-slow"
            wait_for(
                lambda: feeds.requests_to("/slow.rss"),
                60,
                "the first worker to start polling the slow feed",
            )
            kill_group(first)  # SIGKILL the worker and its pool in the middle of the poll
            first.wait(timeout=10)
            assert count(app, m.Mention, m.Mention.source.has(name="a-slow")) == 0
            second = start_listener(
                ["worker", "-c", "2", "-n", "survivor@%h"], config, tmp_path / "survivor.log"
            )
            try:
                wait_for(
                    lambda: sources_done(app, names),
                    90,
                    "the surviving worker to poll every source",
                )
            except AssertionError:
                for p in tmp_path.glob("*.log"):
                    print(p.name, p.read_text()[-3000:])
                raise
        finally:
            for proc in (first, second):
                if proc is not None:
                    stop(proc)
            purge_queue(workers["broker_url"], queue)
        try:
            doomed = (tmp_path / "doomed.log").read_text()
            survivor = (tmp_path / "survivor.log").read_text()
            # the killed task came back: received by both, finished by the survivor
            redelivered = task_ids(doomed) & task_ids(survivor, "succeeded")
            assert redelivered, (doomed[-2000:], survivor[-2000:])
            assert not task_ids(doomed, "succeeded") & redelivered
            per_source, polls = mentions_and_polls(app)
            assert per_source["a-slow"] == 10
            assert all(per_source[f"blog{n}"] == ITEMS for n in range(len(paths)))
            assert all(polls[n] == 1 for n in names), polls
            assert count(app, m.Classification) == count(app, m.Mention)
            assert count(app, m.Source, m.Source.lease_owner.is_not(None)) == 0
        finally:
            app.close()
