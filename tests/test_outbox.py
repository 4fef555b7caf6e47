"""The outbox under concurrency: several senders, every message exactly once; manual
channels wait for a person; never twice to the same post."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import webfixtures as wf
import yaml
from smtpserver import SMTPTestServer
from sqlalchemy import select

from listener import models as m
from listener.app import App
from listener.cases.actions import approve, mark_sent, select_offer
from listener.cases.view import case_view as case_detail
from listener.config import settings_from_dict
from listener.errors import Conflict
from listener.outbox import deliver_pending
from listener.pipeline import poll_sources

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
TEXT = "Zephyr Shoes lost my order, tracking stuck for a week. Terrible, really upset."


def make(db_url: str, tmp_path: Path, n: int, channel: str, port: int = 1) -> App:
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    path = tmp_path / "posts.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"p{i}",
                    "text": TEXT,
                    "created_at": at,
                    "platform": "email",
                    "author": {
                        "handle": f"cust{i}",
                        "name": f"Customer{i}",
                        "email": f"c{i}@example.org",
                    },
                }
            )
            + "\n"
            for i in range(n)
        )
    )
    recovery = {k: v for k, v in CONFIG["recovery"].items() if k != "templates_dir"}
    recovery.update(
        {
            "templates_dir": str(ROOT / "templates"),
            "caps": {"daily_budget": None, "agent_daily_budget": None, "customer_offers": None},
        }
    )
    data = {
        "brand": CONFIG["brand"],
        "database": {"url": db_url},
        "sources": [
            {"name": "s", "type": "jsonl", "path": str(path), "options": {"channel": channel}}
        ],
        "classifier": {"kind": "lexicon"},
        "recovery": recovery,
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from_address": "care@zephyrshoes.example",
        },
    }
    app = App.from_settings(settings_from_dict(data, base_dir=tmp_path, env={}))
    wf.add_users(app, ("ann", "agent"), ("lee", "lead"))
    poll_sources(app)
    with app.sessions() as s:
        ids = list(s.scalars(select(m.Case.id).order_by(m.Case.id)))
    assert len(ids) == n
    for cid in ids:
        select_offer(app, cid, "ann", "coupon_20")
        approve(app, cid, "ann")
    return app


@pytest.fixture
def smtp() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as server:
        yield server


def test_concurrent_senders_send_each_message_once(
    db_url: str, tmp_path: Path, smtp: SMTPTestServer
) -> None:
    n = 12
    app = make(db_url, tmp_path, n, "email", smtp.port)
    apps = [App.from_settings(app.settings, upgrade=False) for _ in range(4)]
    counts: list[int] = [0] * len(apps)
    barrier = threading.Barrier(len(apps))

    def run(i: int) -> None:
        barrier.wait()
        counts[i] = deliver_pending(apps[i], worker=f"w{i}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(apps))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for a in apps:
            a.close()
    assert sum(counts) == n
    got = smtp.wait_for_messages(n)
    ids = Counter(msg.message_id for msg in got)
    assert len(got) == n and all(c == 1 for c in ids.values())
    with app.sessions() as s:
        rows = s.scalars(select(m.OutboxMessage)).all()
        assert all(r.status == "sent" and r.attempts == 1 for r in rows)
        sent_events = s.scalars(select(m.Event).where(m.Event.kind == "reply.sent")).all()
        assert len(sent_events) == n
    app.close()


def test_manual_channel_waits_for_a_person_and_never_twice(db_url: str, tmp_path: Path) -> None:
    app = make(db_url, tmp_path, 1, "blog_comment")
    assert deliver_pending(app) == 0  # blog comments are posted by people
    with app.sessions() as s:
        (row,) = s.scalars(select(m.OutboxMessage)).all()
        (cid,) = s.scalars(select(m.Case.id)).all()
    assert row.status == "pending" and row.attempts == 0
    out = mark_sent(app, cid, "ann", url="https://blog.example/post#comment-9")
    assert out["status"] == "sent"
    detail = case_detail(app, cid)
    assert detail["outbox"][0]["external_id"] == "https://blog.example/post#comment-9"
    assert [e["actor"] for e in detail["events"] if e["kind"] == "reply.sent"] == ["ann"]
    with pytest.raises(Conflict):
        mark_sent(app, cid, "ann")
    app.close()


def test_never_twice_to_the_same_post(db_url: str, tmp_path: Path) -> None:
    from listener.outbox import already_replied

    app = make(db_url, tmp_path, 1, "blog_comment")
    with app.sessions() as s:
        (row,) = s.scalars(select(m.OutboxMessage)).all()
        assert already_replied(s, "blog_comment", row.in_reply_to)
        assert not already_replied(s, "blog_comment", row.in_reply_to, exclude_id=row.id)
        assert not already_replied(s, "email", row.in_reply_to)
    app.close()
