"""Helpers for the web tests: seed cases and users, run the app on a real local port."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from listener import models as m
from listener import rollups
from listener.app import App

PASSWORD = "correct horse battery"
OFFERS: list[dict[str, Any]] = [
    {
        "key": "overnight_upgrade",
        "kind": "shipping_upgrade",
        "cost": 18,
        "description": "we've upgraded your shipping to overnight, on us",
    },
    {
        "key": "free_replacement",
        "kind": "free_replacement",
        "value": 120,
        "cost": 65,
        "description": "we're sending you a brand-new pair at no charge",
    },
]
WEB_OVERRIDES: dict[str, Any] = {
    "brand": {"website": "https://zephyrshoes.example"},
    "web": {"secret_key": "test-secret-key-for-sessions-0123456789"},
    "recovery": {"offers": OFFERS, "approval": {"lead_above": 50}},
}


_HASH: list[str] = []


#: The team the web and API tests sign in as.
TEAM = (("ann", "agent"), ("bob", "agent"), ("lee", "lead"), ("mia", "marketing"))


def team_app(make_app: Any) -> App:
    """An App with the web settings and :data:`TEAM` as its users."""
    app: App = make_app(WEB_OVERRIDES)
    add_users(app, *TEAM)
    return app


def add_users(app: App, *names_roles: tuple[str, str]) -> None:
    """Users with password PASSWORD (hashed once per test session: argon2 is slow on purpose)."""
    from listener.auth import hash_password

    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    with app.sessions.begin() as s:
        for name, role in names_roles:
            s.add(m.User(username=name, role=role, password_hash=_HASH[0]))


def seed_case(
    app: App,
    text: str = "My Zephyr Shoes order never arrived, lost package. So angry!",
    *,
    handle: str = "@maria",
    followers: int = 12_000,
    source: str = "example-social",
    channel: str = "x_reply",
    draft: str | None = "@maria So sorry about your order! We're on it. — Zephyr Shoes",
    priority: int = 80,
    category: str = "delivery",
    label: str = "negative",
    url: str | None = "https://x.example/status/1",
    status: str | None = None,
    published_at: datetime | None = None,
    extra_mentions: int = 0,
) -> int:
    """One open case with its post (and a draft): returns the case id."""
    now = datetime.now(UTC)
    published = published_at or now - timedelta(minutes=20)
    with app.sessions.begin() as s:
        src = s.query(m.Source).filter_by(name=source).one_or_none()
        if src is None:
            src = m.Source(name=source, type="jsonl", config_location="test")
            s.add(src)
            s.flush()
        author = s.query(m.Author).filter_by(platform="x", handle=handle).one_or_none()
        if author is None:
            author = m.Author(
                platform="x",
                handle=handle,
                display_name=handle.strip("@").title(),
                followers=followers,
            )
            s.add(author)
            s.flush()
        case = m.Case(
            author_id=author.id,
            source_id=src.id,
            status=status or ("drafted" if draft else "new"),
            priority=priority,
            reasons=[f"{label} 0.97", "lost package", f"{followers // 1000}k followers"],
            category=category,
            unhappy_score=0.97,
            sla_due_at=published + timedelta(hours=1),
            last_mention_at=published,
            mention_count=1 + extra_mentions,
            created_at=now,
        )
        s.add(case)
        s.flush()
        first = None
        counts = rollups.Batch.for_settings(app.settings)  # as the pipeline keeps them
        for i in range(1 + extra_mentions):
            body = text if i == 0 else f"{text} (again #{i})"
            digest = hashlib.sha256(body.encode()).hexdigest()
            mention = m.Mention(
                source_id=src.id,
                external_id=f"{case.id}-{i}-{digest[:8]}",
                author_id=author.id,
                case_id=case.id,
                url=url,
                text=body,
                published_at=published + timedelta(minutes=i),
                content_hash=hashlib.sha256(body.encode()).hexdigest(),
                label=label,
                unhappy=label == "negative",
                unhappy_score=0.97,
                category=category,
                model_version="test",
            )
            s.add(mention)
            s.flush()
            counts.add(mention)
            first = first or mention
        rollups.record(s, counts)
        if draft is not None:
            s.add(
                m.Draft(
                    case_id=case.id,
                    channel=channel,
                    text=draft,
                    in_reply_to_mention_id=first.id if first else None,
                )
            )
        s.add(
            m.Event(
                actor="listener", kind="case.opened", case_id=case.id, data={"priority": priority}
            )
        )
        return case.id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(app: App) -> Iterator[str]:
    """The web app served by uvicorn on 127.0.0.1:<free port>, in a thread."""
    import uvicorn

    from listener.web import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(app), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test web server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def login(client: Any, username: str, password: str = PASSWORD) -> None:
    """Sign a TestClient in through the real form (CSRF token included)."""
    import re

    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "no CSRF token on the login form"
    r = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


def csrf_of(client: Any, path: str = "/queue") -> str:
    import re

    page = client.get(path)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert token, f"no CSRF token on {path}"
    return token.group(1)
