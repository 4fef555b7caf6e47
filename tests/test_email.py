"""Email replies through a real local SMTP server, exactly once, even when the sender is
killed mid-send (acceptance 3)."""

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
from typing import Any

import pytest
import webfixtures as wf
import yaml
from smtpserver import SMTPTestServer
from sqlalchemy import select

from listener import models as m
from listener.app import App
from listener.cases.actions import approve, select_offer
from listener.cases.view import case_view as case_detail
from listener.channels.email import build_email, message_id
from listener.channels.registry import Outbound
from listener.config import EmailSettings, settings_from_dict
from listener.errors import PolicyViolation
from listener.outbox import deliver_one, deliver_pending
from listener.pipeline import poll_sources

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "config.yaml").read_text())
TEXT = "My Zephyr Shoes order never arrived, tracking stuck for nine days. Really upset."


@pytest.fixture
def smtp() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as server:
        yield server


def config_dict(
    db_url: str,
    tmp_path: Path,
    port: int,
    *,
    email: str | None = "rae@example.org",
    **recovery: Any,
) -> dict[str, Any]:
    author: dict[str, Any] = {"handle": "rae", "name": "Rae Lindqvist"}
    if email:
        author["email"] = email
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    posts = tmp_path / "mail.jsonl"
    posts.write_text(
        json.dumps(
            {"id": "m-1", "text": TEXT, "author": author, "created_at": at, "platform": "email"}
        )
        + "\n"
    )
    block = {k: v for k, v in CONFIG["recovery"].items() if k != "templates_dir"}
    block.update(
        {"templates_dir": str(ROOT / "templates"), "outbox_lease": "1s", "retry_base": "1s"}
    )
    block.update(recovery)
    return {
        "brand": CONFIG["brand"],
        "database": {"url": db_url},
        "sources": [
            {"name": "mail", "type": "jsonl", "path": str(posts), "options": {"channel": "email"}}
        ],
        "classifier": {"kind": "lexicon"},
        "recovery": block,
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "from_address": "care@zephyrshoes.example",
            "from_name": "Zephyr Shoes",
            "reply_to": "care@zephyrshoes.example",
            "timeout": "10s",
        },
        "logging": {"level": "WARNING"},
    }


@pytest.fixture
def make_email_app(db_url: str, tmp_path: Path) -> Iterator[Any]:
    apps: list[App] = []

    def factory(port: int, **kw: Any) -> tuple[App, Path]:
        data = config_dict(db_url, tmp_path, port, **kw)
        cfg = tmp_path / "config.yaml"
        cfg.write_text(yaml.safe_dump(data))
        app = App.from_settings(settings_from_dict(data, base_dir=tmp_path, env={}))
        apps.append(app)
        wf.add_users(app, ("ann", "agent"), ("lee", "lead"))
        poll_sources(app)
        return app, cfg

    yield factory
    for app in apps:
        app.close()


def approved_case(app: App) -> int:
    with app.sessions() as s:
        (cid,) = s.scalars(select(m.Case.id)).all()
    select_offer(app, cid, "ann", "coupon_20")
    approve(app, cid, "ann")
    return cid


def outbox(app: App) -> m.OutboxMessage:
    with app.sessions() as s:
        (row,) = s.scalars(select(m.OutboxMessage)).all()
        return row


def test_approved_email_reaches_the_server_once(smtp: SMTPTestServer, make_email_app: Any) -> None:
    app, _ = make_email_app(smtp.port)
    cid = approved_case(app)
    assert deliver_pending(app) == 1
    assert deliver_pending(app) == 0
    row = outbox(app)
    assert deliver_one(app, row.id) == "skipped"
    (got,) = smtp.wait_for_messages(1)
    assert got.rcpt_tos == ["rae@example.org"]
    assert got.message_id == message_id(row.idempotency_key, "care@zephyrshoes.example")
    assert got.message["Subject"] and "Rae" in got.message["Subject"]
    body = got.message.get_payload(decode=True).decode()
    detail = case_detail(app, cid)
    code = next(o["code"] for o in detail["offers"] if o["status"] == "approved")
    assert code in body and "Hi Rae" in body and "[CODE]" not in body
    assert row.status == "sent" and row.external_id == got.message_id and row.attempts == 1
    assert detail["status"] == "sent" and detail["first_response_at"]
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds.index("case.approved") < kinds.index("outbox.sending") < kinds.index("reply.sent")
    time.sleep(0.3)
    assert len(smtp.messages) == 1


def test_killed_mid_send_is_delivered_exactly_once(
    smtp: SMTPTestServer, make_email_app: Any
) -> None:
    app, cfg = make_email_app(smtp.port)
    cid = approved_case(app)
    smtp.hold()  # the server stalls after RCPT TO: the sender is mid-conversation
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LISTENER_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "listener", "--config", str(cfg), "send", "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert smtp.wait_for_rcpt(60), proc.communicate(timeout=5)[0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    smtp.release()
    time.sleep(0.2)
    assert smtp.messages == []  # the unfinished message was dropped
    row = outbox(app)
    assert row.status == "sending" and row.attempts == 1 and row.lease_owner
    # the dead sender's lease still holds: nobody else sends yet
    assert deliver_pending(app) == 0
    time.sleep(1.2)  # recovery.outbox_lease is 1s
    assert deliver_pending(app, worker="recoverer") == 1
    # a second sender process finds nothing left to do
    out = subprocess.run(
        [sys.executable, "-m", "listener", "--config", str(cfg), "send", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "sent 0 messages" in out.stdout
    time.sleep(0.3)
    (got,) = smtp.messages
    row = outbox(app)
    assert row.status == "sent" and row.attempts == 2 and got.message_id == row.external_id
    events = case_detail(app, cid)["events"]
    story = [
        (e["kind"], e["data"].get("attempt"), e["data"].get("recovering"))
        for e in events
        if e["kind"] in ("case.approved", "outbox.sending", "reply.sent")
    ]
    assert story == [
        ("case.approved", None, None),
        ("outbox.sending", 1, False),
        ("outbox.sending", 2, True),
        ("reply.sent", None, None),
    ]
    sent = next(e for e in events if e["kind"] == "reply.sent")
    assert sent["actor"] == "recoverer" and sent["data"]["recovered"] is True


def test_transient_refusal_backs_off_then_sends(smtp: SMTPTestServer, make_email_app: Any) -> None:
    app, _ = make_email_app(smtp.port)
    cid = approved_case(app)
    smtp.recorder.refuse_with = "451 4.3.0 try again later"
    row = outbox(app)
    assert deliver_one(app, row.id) == "retry"
    row = outbox(app)
    assert row.status == "sending" and row.next_attempt_at and "451" in (row.last_error or "")
    assert deliver_one(app, row.id) == "skipped"  # backing off
    smtp.recorder.refuse_with = None
    time.sleep(1.2)
    assert deliver_pending(app) == 1
    assert len(smtp.wait_for_messages(1)) == 1
    kinds = [e["kind"] for e in case_detail(app, cid)["events"]]
    assert "outbox.retry" in kinds and kinds[-1] == "reply.sent"


def test_permanent_refusal_fails_visibly(smtp: SMTPTestServer, make_email_app: Any) -> None:
    app, _ = make_email_app(smtp.port)
    cid = approved_case(app)
    smtp.recorder.refuse_with = "550 5.1.1 no such user"
    assert deliver_pending(app) == 0
    row = outbox(app)
    assert row.status == "failed" and "refused" in (row.last_error or "")
    detail = case_detail(app, cid)
    failed = [e for e in detail["events"] if e["kind"] == "outbox.failed"]
    assert failed and "refused" in failed[0]["data"]["error"]
    assert detail["status"] == "approved" and smtp.messages == []


def test_no_address_no_approval(smtp: SMTPTestServer, make_email_app: Any) -> None:
    app, _ = make_email_app(smtp.port, email=None)
    with app.sessions() as s:
        (cid,) = s.scalars(select(m.Case.id)).all()
    with pytest.raises(PolicyViolation, match="no email address"):
        approve(app, cid, "lee")


def test_build_email_headers() -> None:
    settings = EmailSettings(
        host="h",
        from_address="care@zephyrshoes.example",
        from_name="Zephyr",
        reply_to="help@zephyrshoes.example",
    )
    msg = Outbound(
        idempotency_key="reply:1:2",
        channel="email",
        text="Hello",
        in_reply_to="<abc@mail>",
        recipient="rae@example.org",
        subject="Sorry",
    )
    mail = build_email(msg, settings)
    assert mail["Message-ID"] == message_id("reply:1:2", "care@zephyrshoes.example")
    assert mail["Message-ID"] == build_email(msg, settings)["Message-ID"]
    assert mail["In-Reply-To"] == "<abc@mail>" and mail["Reply-To"] == "help@zephyrshoes.example"
    assert mail["Subject"] == "Sorry" and mail["To"] == "rae@example.org"
