"""Replies on Mastodon, Bluesky and Reddit: posted once, even when the sender is killed
right after the platform accepted the post (issue 17, acceptance 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import webfixtures as wf
import yaml
from blueskyserver import BLUESKY_ENV, BRAND_HANDLE, RECORDED, BlueskyServer, bluesky_settings
from mastodonserver import MASTODON_ENV, MastodonServer, mastodon_settings
from redditserver import BRAND, REDDIT_ENV, RedditServer, reddit_settings
from sqlalchemy import select

from listener import models as m
from listener.app import App
from listener.cases.actions import approve as approve_case
from listener.cases.actions import edit_draft, select_offer
from listener.cases.view import case_view as case_detail
from listener.channels.registry import get_channel
from listener.collectors.bluesky import forget_sessions
from listener.collectors.reddit import forget_tokens
from listener.config import settings_from_dict
from listener.outbox import deliver_pending
from listener.pipeline import poll_sources

ROOT = Path(__file__).resolve().parent.parent
ANGRY = "my order never arrived and support is silent. Furious, terrible service."


@dataclass
class Platform:
    """One platform's server, config and the customer post the test answers."""

    server: Any
    config: dict[str, Any]
    env: dict[str, str]
    channel: str
    post_path: str  #: where the reply is POSTed
    posted: Callable[[], list[Any]]  #: the replies the server holds


@contextmanager
def platform(name: str, shared: Path) -> Iterator[Platform]:
    forget_sessions()
    forget_tokens()
    if name == "mastodon":
        with MastodonServer(shared / "mastodon") as srv:
            srv.add_status(f"@halcy {ANGRY}", acct="greg@icosahedron.website", mention="halcy")
            cfg = mastodon_settings(
                srv.base_url, [{"name": "s", "type": "mastodon", "account": "halcy"}]
            )
            yield Platform(
                srv, cfg, MASTODON_ENV, "mastodon_reply", "/api/v1/statuses", lambda: srv.posted
            )
    elif name == "bluesky":
        with BlueskyServer(shared / "bluesky") as srv:
            srv.add_post(f"@{BRAND_HANDLE} {ANGRY}", author=RECORDED, mention=BRAND_HANDLE)
            cfg = bluesky_settings(
                srv.base_url, [{"name": "s", "type": "bluesky", "handle": BRAND_HANDLE}]
            )

            def replies() -> list[Any]:
                did = srv.did_of(BRAND_HANDLE)
                return [p for p in srv.posts.values() if p["author"]["did"] == did]

            yield Platform(
                srv,
                cfg,
                BLUESKY_ENV,
                "bluesky_reply",
                "/xrpc/com.atproto.repo.createRecord",
                replies,
            )
    else:
        with RedditServer(shared / "reddit") as srv:
            srv.listings["mentions"].clear()
            srv.add_thing("mentions", "t1", f"u/{BRAND} {ANGRY}", author="annoyed_customer")
            cfg = reddit_settings(
                srv.base_url, [{"name": "s", "type": "reddit", "username": BRAND}]
            )
            yield Platform(
                srv, cfg, REDDIT_ENV, "reddit_reply", "/api/comment", lambda: srv.listings["user"]
            )
    forget_sessions()
    forget_tokens()


def make(p: Platform, db_url: str, tmp_path: Path) -> tuple[App, Path]:
    data = dict(p.config)
    data.update(
        {
            "database": {"url": db_url},
            "classifier": {"kind": "lexicon"},
            "recovery": {
                "templates_dir": str(ROOT / "templates"),
                "outbox_lease": "1s",
                "retry_base": "1s",
            },
            "polling": {"timeout": "60s"},
            "logging": {"level": "WARNING"},
        }
    )
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    app = App.from_settings(settings_from_dict(data, base_dir=tmp_path, env=p.env))
    wf.add_users(app, ("lee", "lead"))
    return app, path


def approved_case(app: App) -> int:
    (outcome,) = poll_sources(app)
    assert outcome.status == "ok" and outcome.cases_opened == 1, outcome
    with app.sessions() as s:
        (cid,) = s.scalars(select(m.Case.id)).all()
    select_offer(app, cid, "lee", None, role="lead")
    approve_case(app, cid, "lee", role="lead")
    return cid


def outbox_row(app: App) -> m.OutboxMessage:
    with app.sessions() as s:
        (row,) = s.scalars(select(m.OutboxMessage)).all()
        return row


@pytest.mark.parametrize("name", ["mastodon", "bluesky", "reddit"])
def test_killed_right_after_the_platform_accepted_posts_once(
    name: str, shared_data: Path, db_url: str, tmp_path: Path
) -> None:
    with platform(name, shared_data) as p:
        app, cfg = make(p, db_url, tmp_path)
        try:
            cid = approved_case(app)
            with app.sessions() as s:
                draft = s.scalars(select(m.Draft)).one()
                assert draft.channel == p.channel
            # the platform creates the post, then takes 30 s to answer: the sender dies then
            p.server.delay(p.post_path, 30, method="POST", after=True)
            env = {**os.environ, **p.env, "PYTHONPATH": str(ROOT)}
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
                while not p.server.requests_to(p.post_path, "POST") and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert p.server.requests_to(p.post_path, "POST"), proc.communicate(timeout=5)[0]
                time.sleep(0.5)  # the post exists; the answer is not back
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
            finally:
                if proc.poll() is None:
                    proc.kill()
            assert len(p.posted()) == 1
            row = outbox_row(app)
            assert row.status == "sending" and row.external_id is None

            time.sleep(1.2)  # the dead sender's lease runs out
            assert deliver_pending(app, worker="recoverer") == 1
            row = outbox_row(app)
            assert row.status == "sent" and row.external_id
            assert len(p.posted()) == 1, "posted twice"
            assert deliver_pending(app) == 0
            events = [e["kind"] for e in case_detail(app, cid)["events"]]
            assert events.count("reply.sent") == 1
        finally:
            app.close()


def test_mastodon_reply_matches_visibility_and_names_the_author(
    shared_data: Path, db_url: str, tmp_path: Path
) -> None:
    with platform("mastodon", shared_data) as p:
        p.server.notifications.clear()
        target = p.server.add_status(
            f"@halcy {ANGRY}", acct="greg@icosahedron.website", mention="halcy", visibility="direct"
        )
        app, _ = make(p, db_url, tmp_path)
        try:
            cid = approved_case(app)
            assert deliver_pending(app) == 1
            (reply,) = p.server.posted
            assert reply["visibility"] == "direct"
            assert reply["in_reply_to_id"] == target["id"]
            assert "@greg@icosahedron.website" in reply["content"]
            key = p.server.requests_to("/api/v1/statuses", "POST")[0].headers["idempotency-key"]
            assert key.startswith("listener-")
            assert case_detail(app, cid)["status"] == "sent"
        finally:
            app.close()


def test_bluesky_reply_has_root_and_parent(shared_data: Path, db_url: str, tmp_path: Path) -> None:
    with platform("bluesky", shared_data) as p:
        root = next(v for v in p.server.posts.values() if v["record"].get("text") == "test")
        srv = p.server
        srv.notifications.clear()
        thread = srv.add_post(
            f"@{BRAND_HANDLE} {ANGRY}",
            author="divy.zone",
            reply_to=root["uri"],
            mention=BRAND_HANDLE,
        )
        app, _ = make(p, db_url, tmp_path)
        try:
            approved_case(app)
            assert deliver_pending(app) == 1
            (reply,) = [v for v in p.posted() if v["record"].get("reply")]
            assert reply["record"]["reply"]["parent"] == {
                "uri": thread["uri"],
                "cid": thread["cid"],
            }
            assert reply["record"]["reply"]["root"] == {"uri": root["uri"], "cid": root["cid"]}
            facets = reply["record"].get("facets") or []
            assert facets and facets[0]["features"][0]["did"] == srv.did_of("divy.zone")
        finally:
            app.close()


def test_a_reply_naming_someone_else_is_refused_before_sending(
    shared_data: Path, db_url: str, tmp_path: Path
) -> None:
    with platform("reddit", shared_data) as p:
        app, _ = make(p, db_url, tmp_path)
        try:
            poll_sources(app)
            with app.sessions() as s:
                (cid,) = s.scalars(select(m.Case.id)).all()
            edit_draft(app, cid, "lee", "Sorry! u/someone_else will help you.", role="lead")
            from listener.errors import PolicyViolation

            with pytest.raises(PolicyViolation, match="u/someone_else"):
                approve_case(app, cid, "lee", role="lead")
            assert p.server.requests_to("/api/comment", "POST") == []
        finally:
            app.close()


def test_reddit_refusals_are_sorted_into_retry_and_give_up(
    shared_data: Path, tmp_path: Path
) -> None:
    from listener.channels.registry import Outbound
    from listener.errors import DeliveryError, TransientError

    with platform("reddit", shared_data) as p:
        settings = settings_from_dict(p.config, env=p.env)
        channel = get_channel("reddit_reply", settings)
        target = p.server.listings["mentions"][0]["data"]["name"]
        msg = Outbound(
            "k1", "reddit_reply", "We're sorry, fixing it now.", target, "annoyed_customer"
        )
        p.server.fail(
            "/api/comment",
            200,
            body={"json": {"errors": [["RATELIMIT", "you are doing that too much", "ratelimit"]]}},
        )
        with pytest.raises(TransientError, match="slow down"):
            channel.send(msg)
        p.server.fail(
            "/api/comment",
            200,
            body={"json": {"errors": [["THREAD_LOCKED", "that thread is locked", "parent"]]}},
        )
        with pytest.raises(DeliveryError) as info:
            channel.send(msg)
        assert info.value.retryable is False
        assert channel.find_existing(msg) is None
        posted = channel.send(msg)
        assert channel.find_existing(msg) == posted
