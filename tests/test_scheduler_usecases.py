"""The worker-side use-cases in-process (SQLite and PostgreSQL): dispatch plan, claimed
polls, exactly-once re-classification, sending through the outbox."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from opsfixtures import SmtpSink, add_outbox_messages
from sqlalchemy import func, select, update

from listener import models as m
from listener.locks import claim_source, source_lease
from listener.pipeline import sync_sources
from listener.scheduler import classify_mentions, plan_dispatch, poll_claimed, send_claimed

SOCIAL = {"name": "social", "type": "jsonl", "path": "examples/social.jsonl"}
BLOGS = {"name": "blogs", "type": "feed", "path": "examples/blog.xml"}


def test_plan_lists_due_unclaimed_sources_messages_and_stale_classifications(
    make_app: Any,
) -> None:
    app = make_app({"sources": [SOCIAL, BLOGS]})
    plan = plan_dispatch(app, model_version="lexicon-vader-1")
    assert plan.sources == ["blogs", "social"] and plan.messages == [] and plan.classify == []
    assert claim_source(app, "blogs", "other-worker", timedelta(minutes=1))
    assert plan_dispatch(app).sources == ["social"]  # claimed elsewhere: not enqueued again
    outcome = poll_claimed(app, "social", owner="me")
    assert outcome is not None and outcome.status == "ok" and outcome.new > 0
    assert source_lease(app, "social") == (None, None)  # released after the poll
    assert plan_dispatch(app).sources == []  # polled: not due for 15 minutes
    ids = add_outbox_messages(app, 2) + add_outbox_messages(app, 1, channel="blog_comment")
    plan = plan_dispatch(app, model_version="a-newer-model", batch=10)
    assert plan.messages == ids[:2]  # manual channels are posted by people, not workers
    with app.sessions() as session:
        total = session.scalar(select(func.count()).select_from(m.Mention))
    assert sum(len(b) for b in plan.classify) == total
    assert all(len(b) <= 10 for b in plan.classify)


def test_poll_claimed_skips_a_source_claimed_elsewhere_or_not_due(make_app: Any) -> None:
    app = make_app({"sources": [SOCIAL]})
    sync_sources(app)  # the beat does this before it enqueues anything
    assert claim_source(app, "social", "other", timedelta(minutes=1))
    assert poll_claimed(app, "social", owner="me") is None
    assert source_lease(app, "social")[0] == "other"
    with app.sessions() as session, session.begin():
        session.execute(
            update(m.Source).values(
                lease_owner=None, lease_until=None, next_check_at=datetime.now(UTC) + timedelta(1)
            )
        )
    assert poll_claimed(app, "social", owner="me") is None  # not due
    forced = poll_claimed(app, "social", owner="me", force=True)
    assert forced is not None and forced.status == "ok"


def test_classify_mentions_runs_once_per_model_version(make_app: Any) -> None:
    app = make_app({"sources": [SOCIAL]})
    sync_sources(app)
    poll_claimed(app, "social", owner="me")
    with app.sessions() as session, session.begin():
        ids = list(session.scalars(select(m.Mention.id).order_by(m.Mention.id)))
        before = session.scalar(select(func.count()).select_from(m.Classification))
        # pretend half of them were classified by an older model
        session.execute(
            update(m.Mention).where(m.Mention.id.in_(ids[::2])).values(model_version="old-model")
        )
    results: list[int] = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        barrier.wait()
        results.append(classify_mentions(app, ids))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == len(ids[::2])  # the stale ones, once, whoever got there first
    assert classify_mentions(app, ids) == 0
    with app.sessions() as session:
        after = session.scalar(select(func.count()).select_from(m.Classification))
        versions = set(session.scalars(select(m.Mention.model_version)))
    assert after == before + len(ids[::2])
    assert versions == {app.classifier.version}


def test_send_claimed_delivers_each_message_once(make_app: Any) -> None:
    with SmtpSink() as sink:
        app = make_app(
            {
                "email": {
                    "host": "127.0.0.1",
                    "port": sink.port,
                    "security": "none",
                    "from_address": "care@zephyrshoes.example",
                }
            }
        )
        ids = add_outbox_messages(app, 3)
        results = [send_claimed(app, i, owner="w1") for i in ids]
        again = [send_claimed(app, i, owner="w2") for i in ids]  # a redelivered task
        assert results == ["sent"] * 3 and again == ["skipped"] * 3
        assert len(sink.message_ids()) == 3 == len(set(sink.message_ids()))


def test_scheduler_round_defers_a_rate_limited_source_and_counts_it(make_app: Any) -> None:
    from feedserver import FeedServer, Reply

    from listener.metrics import REGISTRY
    from listener.scheduler import Scheduler

    with FeedServer() as srv:
        url = srv.route("/limited.rss", Reply(429, b"slow down", {"Retry-After": "120"}))
        app = make_app({"sources": [SOCIAL, {"name": "limited", "type": "feed", "url": url}]})
        before = (
            REGISTRY.get_sample_value("listener_rate_limit_deferrals_total", {"source": "limited"})
            or 0.0
        )
        scheduler = Scheduler(app, max_sleep=30)
        report = scheduler.run_once()
        by_name = {o.source: o for o in report.outcomes}
        assert by_name["social"].status == "ok"
        limited = by_name["limited"]
        assert limited.status == "deferred" and limited.next_check_at is not None
        wait = (limited.next_check_at - datetime.now(UTC)).total_seconds()
        assert 100 < wait <= 121
        after = REGISTRY.get_sample_value(
            "listener_rate_limit_deferrals_total", {"source": "limited"}
        )
        assert after == before + 1
        # nothing is due now: the next round polls nothing and the scheduler sleeps max_sleep
        assert scheduler.run_once().outcomes == []
        assert scheduler.seconds_until_next_due() == 30
        assert scheduler.lock is None  # run_once on its own takes and releases the lock
