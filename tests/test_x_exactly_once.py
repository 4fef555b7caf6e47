"""Issue 4, acceptance 3: an approved X reply is posted once, even when the sending
process is killed right after the API call (X has the post, we never recorded its id)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import webfixtures as wf
import yaml
from sqlalchemy import select
from xserver import TEST_ENV, XServer, settings_dict, snowflake

from listener import models as m
from listener.app import App
from listener.cases.actions import approve, select_offer
from listener.cases.view import case_view as case_detail
from listener.config import settings_from_dict
from listener.outbox import deliver_pending
from listener.pipeline import poll_sources

ROOT = Path(__file__).resolve().parent.parent
MENTIONS = "/2/users/783214/mentions"
CUSTOMER = {"id": "9000000001", "username": "sam_flyer", "name": "Sam Flyer"}
TEXT = "@Twitter my order never arrived and support is silent. Furious, terrible service."


@pytest.fixture
def server(shared_data: Path) -> Iterator[XServer]:
    with XServer(shared_data / "x-api") as srv:
        yield srv


def outbox_row(app: App) -> m.OutboxMessage:
    with app.sessions() as s:
        (row,) = s.scalars(select(m.OutboxMessage)).all()
        return row


def test_killed_right_after_the_api_call_posts_once(
    server: XServer, db_url: str, tmp_path: Path
) -> None:
    tid = snowflake(time.time() - 60)
    server.add_tweets(
        MENTIONS,
        [{"id": tid, "author_id": CUSTOMER["id"], "conversation_id": tid, "text": TEXT}],
        [CUSTOMER],
    )
    posts = tmp_path / "posts.jsonl"
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    posts.write_text(
        json.dumps(
            {
                "id": tid,
                "text": TEXT,
                "created_at": at,
                "platform": "x",
                "author": {"handle": "sam_flyer", "name": "Sam Flyer"},
            }
        )
        + "\n"
    )
    data = settings_dict(server.base_url, timeout="60s")
    data.update(
        {
            "database": {"url": db_url},
            "sources": [
                {
                    "name": "x-file",
                    "type": "jsonl",
                    "path": str(posts),
                    "options": {"channel": "x_reply"},
                }
            ],
            "classifier": {"kind": "lexicon"},
            "recovery": {
                "templates_dir": str(ROOT / "templates"),
                "outbox_lease": "1s",
                "retry_base": "1s",
            },
            "logging": {"level": "WARNING"},
        }
    )
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(data))
    app = App.from_settings(settings_from_dict(data, base_dir=tmp_path, env=TEST_ENV))
    try:
        wf.add_users(app, ("ann", "agent"), ("lee", "lead"))
        poll_sources(app)
        with app.sessions() as s:
            (cid,) = s.scalars(select(m.Case.id)).all()
        select_offer(app, cid, "lee", None)
        approve(app, cid, "lee")

        # X creates the post, then takes 30 s to answer: the sender dies in that window
        server.delay("/2/tweets", 30, method="POST", after=True)
        env = {**os.environ, **TEST_ENV, "PYTHONPATH": str(ROOT)}
        env.pop("LISTENER_DATABASE_URL", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "listener", "--config", str(cfg), "send", "--once"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not server.requests_to("/2/tweets", "POST") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.requests_to("/2/tweets", "POST"), proc.communicate(timeout=5)[0]
            time.sleep(0.5)  # the server has created the post and is sitting on the answer
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        row = outbox_row(app)
        assert row.status == "sending" and row.external_id is None

        time.sleep(1.2)  # the dead sender's lease (1 s) runs out
        assert deliver_pending(app, worker="recoverer") == 1
        row = outbox_row(app)
        assert row.status == "sent" and row.external_id
        assert len(server.requests_to("/2/tweets", "POST")) == 1, "posted twice"
        # the id we recorded is the post X created in the killed attempt
        timeline = [r for r in server.received if r.method == "GET" and "/tweets" in r.path]
        assert timeline, "recovery asked X what the brand already posted"
        assert deliver_pending(app) == 0
        events = [e["kind"] for e in case_detail(app, cid)["events"]]
        assert events.count("reply.sent") == 1
        assert events.index("case.approved") < events.index("outbox.sending")
    finally:
        app.close()
