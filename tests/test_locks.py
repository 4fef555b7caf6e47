"""Leases: the scheduler lock and source claims (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from listener import models as m
from listener.locks import (
    Heartbeat,
    LockHeld,
    LockLost,
    acquire_lock,
    claim_source,
    held_message,
    holding_source,
    lease_is_free,
    lock_holder,
    release_lock,
    release_source,
    renew_lock,
    source_lease,
)
from listener.pipeline import sync_sources

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


def test_lease_is_free_decisions() -> None:
    assert lease_is_free(None, None, "me", NOW)
    assert lease_is_free("me", NOW + TTL, "me", NOW)
    assert not lease_is_free("other", NOW + TTL, "me", NOW)
    assert lease_is_free("other", NOW - timedelta(seconds=1), "me", NOW)
    assert lease_is_free("other", NOW, "me", NOW)  # expiring now counts as expired


def test_second_scheduler_is_refused_with_holder_and_expiry(make_app: Any) -> None:
    app = make_app()
    first = acquire_lock(app, "host-a:101", TTL, now=NOW)
    assert first.owner == "host-a:101" and first.expires_at == NOW + TTL
    with pytest.raises(LockHeld) as err:
        acquire_lock(app, "host-b:202", TTL, now=NOW + timedelta(seconds=5))
    message = str(err.value)
    assert "another scheduler (host-a:101) holds the lock until 2026-11-23 12:00:30 UTC" in message
    assert "stop it or wait" in message
    assert err.value.holder is not None and err.value.holder.owner == "host-a:101"
    # the holder itself may re-acquire (a restart of the same process id) and renew
    acquire_lock(app, "host-a:101", TTL, now=NOW + timedelta(seconds=10))
    renewed = renew_lock(app, "host-a:101", TTL, now=NOW + timedelta(seconds=20))
    assert renewed.expires_at == NOW + timedelta(seconds=20) + TTL


def test_expired_lease_is_taken_over_and_the_old_holder_loses_it(make_app: Any) -> None:
    app = make_app()
    acquire_lock(app, "crashed:1", TTL, now=NOW)
    later = NOW + TTL + timedelta(seconds=1)
    taken = acquire_lock(app, "fresh:2", TTL, now=later)
    assert taken.owner == "fresh:2" and taken.acquired_at == later
    with pytest.raises(LockLost, match="now held by fresh:2"):
        renew_lock(app, "crashed:1", TTL)
    assert not release_lock(app, "crashed:1")  # only one's own lock is released
    assert lock_holder(app) is not None
    assert release_lock(app, "fresh:2")
    assert lock_holder(app) is None
    acquire_lock(app, "third:3", TTL)  # free again


def test_concurrent_acquires_have_one_winner(make_app: Any) -> None:
    app = make_app()
    results: list[str] = []
    barrier = threading.Barrier(6)

    def contender(i: int) -> None:
        barrier.wait()
        try:
            acquire_lock(app, f"host:{i}", TTL)
            results.append("won")
        except LockHeld:
            results.append("refused")

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["refused"] * 5 + ["won"]


def test_held_message_names_beat() -> None:
    from listener.locks import LockInfo

    info = LockInfo("beat", "h:1", NOW, NOW + TTL)
    assert held_message(info, "beat").startswith("another beat (h:1) holds the lock until")


def _app_with_source(make_app: Any) -> Any:
    source = {"name": "blog", "type": "jsonl", "path": "examples/social.jsonl"}
    app = make_app({"sources": [source]})
    sync_sources(app)
    return app


def test_source_claim_is_exclusive_until_released_or_expired(make_app: Any) -> None:
    app = _app_with_source(make_app)
    assert claim_source(app, "blog", "w1", TTL, now=NOW)
    assert not claim_source(app, "blog", "w2", TTL, now=NOW + timedelta(seconds=1))
    assert source_lease(app, "blog")[0] == "w1"
    release_source(app, "blog", "w2")  # not w2's: nothing happens
    assert source_lease(app, "blog")[0] == "w1"
    # a dead worker's claim expires
    assert claim_source(app, "blog", "w2", TTL, now=NOW + TTL + timedelta(seconds=1))
    release_source(app, "blog", "w2")
    assert source_lease(app, "blog") == (None, None)


def test_source_claim_requires_due_unless_forced(make_app: Any) -> None:
    app = _app_with_source(make_app)
    with app.sessions() as session, session.begin():
        row = session.query(m.Source).filter_by(name="blog").one()
        row.next_check_at = NOW + timedelta(minutes=5)
    assert not claim_source(app, "blog", "w1", TTL, now=NOW)
    assert claim_source(app, "blog", "w1", TTL, now=NOW, due_only=False)


def test_concurrent_source_claims_have_one_winner(make_app: Any) -> None:
    app = _app_with_source(make_app)
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def contender(i: int) -> None:
        barrier.wait()
        wins.append(claim_source(app, "blog", f"w{i}", TTL))

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


def test_holding_source_renews_the_claim_while_working(make_app: Any) -> None:
    app = _app_with_source(make_app)
    ttl = timedelta(seconds=1.5)
    with holding_source(app, "blog", "w1", ttl) as claimed:
        assert claimed
        first = source_lease(app, "blog")[1]
        time.sleep(1.2)
        later = source_lease(app, "blog")[1]
        assert first is not None and later is not None and later > first
        with holding_source(app, "blog", "w2", ttl) as other:
            assert not other
    assert source_lease(app, "blog") == (None, None)


def test_heartbeat_reports_a_lost_lease() -> None:
    lost: list[BaseException] = []

    def renew() -> None:
        raise LockLost("gone")

    with Heartbeat(renew, every=0.05, on_lost=lost.append) as beat:
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.02)
    assert isinstance(beat.lost, LockLost) and len(lost) == 1


def test_heartbeat_rides_out_a_database_hiccup_but_not_a_long_outage() -> None:
    calls: list[int] = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError("connection reset")

    with Heartbeat(flaky, every=0.05, give_up_after=1.0) as beat:
        deadline = time.monotonic() + 5
        while len(calls) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert beat.lost is None and len(calls) >= 5

    def down() -> None:
        raise RuntimeError("database is down")

    lost: list[BaseException] = []
    with Heartbeat(down, every=0.05, give_up_after=0.3, on_lost=lost.append):
        deadline = time.monotonic() + 5
        while not lost and time.monotonic() < deadline:
            time.sleep(0.02)
    assert lost and "database is down" in str(lost[0])
