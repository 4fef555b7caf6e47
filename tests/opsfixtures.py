"""Helpers for the scheduler, worker and benchmark tests: real services, real processes.

* :func:`require_service` fails (never skips) naming the missing service.
* :func:`fresh_pg_schema` makes a PostgreSQL schema selected through the URL
  (``options=-csearch_path=…``) so subprocesses land in it too.
* :func:`write_feeds` generates RSS feeds that mention the brand;
  :class:`feedserver.FeedServer` serves them on 127.0.0.1.
* :func:`write_config` writes a config.yaml for subprocesses;
  :func:`start_listener` starts ``listener …`` with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_URL = os.environ.get("LISTENER_TEST_DATABASE_URL") or os.environ.get(
    "LISTENER_TEST_PG_URL", DEFAULT_PG
)
REDIS_URL = os.environ.get("LISTENER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("LISTENER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

BRAND = {
    "name": "Zephyr Shoes",
    "handles": ["@zephyrshoes"],
    "keywords": ["Zephyr Shoes", "ZephyrShoes", "zephyrshoes.com"],
    "aliases": ["Zephyr"],
    "exclusions": ["zephyr wind", "Zephyr RTOS", "zephyr project"],
}

UNHAPPY = [
    "My Zephyr Shoes order never arrived and support ignores me. Terrible.",
    "Zephyr Shoes charged me twice and I still have no refund. Awful service.",
    "The soles of my Zephyr Shoes fell apart after a week. So disappointed.",
    "Wrong size from Zephyr Shoes again, and the return label is broken. Angry.",
]
HAPPY = [
    "Love my new Zephyr Shoes, super comfy for running!",
    "Zephyr Shoes shipped fast and the fit is perfect. Great job.",
    "Just ordered another pair from Zephyr Shoes, they are the best.",
]


def require_service(name: str, url: str) -> None:
    """Fail the test (not skip) when ``url``'s host:port does not answer."""
    import pytest

    parts = urlsplit(url.replace("+psycopg", ""))
    host = parts.hostname or "127.0.0.1"
    port = parts.port or {"postgresql": 5432, "redis": 6379, "amqp": 5672}.get(parts.scheme, 0)
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        pytest.fail(
            f"{name} is not reachable at {host}:{port} ({exc}); this test needs a real "
            f"{name} (set the URL with the LISTENER_TEST_* variables)",
            pytrace=False,
        )


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_pg_schema(base: str = PG_URL, prefix: str = "ops") -> Iterator[str]:
    """A new PostgreSQL schema for one test; yields a URL that selects it (through
    ``options=-csearch_path=…``, so subprocesses given the URL land in it too)."""
    import pytest
    from sqlalchemy import create_engine, text

    require_service("PostgreSQL", base)
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {base} is not usable: {exc}", pytrace=False)
    try:
        yield pg_schema_url(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def rss_feed(feed_no: int, items: int, start: datetime | None = None) -> bytes:
    """An RSS feed whose every item mentions the brand (unique guids per feed)."""
    start = start or datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(items):
        texts = UNHAPPY if (feed_no + i) % 3 == 0 else HAPPY
        text = texts[(feed_no * 7 + i) % len(texts)]
        when = format_datetime(start + timedelta(minutes=feed_no * 100 + i))
        out.append(
            f"<item><title>Post {feed_no}-{i}</title>"
            f"<link>http://blog{feed_no}.example/p/{i}</link>"
            f"<guid>blog{feed_no}-post-{i}</guid><author>writer{feed_no}_{i % 5}@blog.example"
            f"</author><pubDate>{when}</pubDate><description>{text} (#{feed_no}-{i})"
            f"</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Blog {feed_no}</title><link>http://blog{feed_no}.example/</link>"
        + "".join(out)
        + "</channel></rss>"
    ).encode()


def write_feeds(directory: Path, count: int, items: int) -> list[Path]:
    """``count`` feed files of ``items`` items each."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(count):
        p = directory / f"feed{n:03d}.rss"
        p.write_bytes(rss_feed(n, items))
        paths.append(p)
    return paths


def base_config(db_url: str, **extra: Any) -> dict[str, Any]:
    """A config mapping for subprocess tests."""
    data: dict[str, Any] = {
        "brand": dict(BRAND),
        "database": {"url": db_url},
        "sources": [],
        "classifier": {"kind": "lexicon"},
        "recovery": {"templates_dir": str(ROOT / "templates")},
        "polling": {"jitter": 0.0, "timeout": "10s"},
        "logging": {"level": "INFO"},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def listener_env(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTENER_")}
    env.update({"LISTENER_CONFIG": str(config), "PYTHONUNBUFFERED": "1", **extra})
    return env


def start_listener(args: list[str], config: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """``listener --config CONFIG ARGS…`` in its own process group, output to ``log``."""
    out = log.open("wb")
    return subprocess.Popen(
        [PYTHON, "-m", "listener", "--config", str(config), *args],
        cwd=ROOT,
        env=listener_env(config, **env),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the process and every child of it (its process group)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM, wait, SIGKILL the group if it lingers; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            proc.wait(timeout=10)
    kill_group(proc)  # leftovers (prefork children)
    return proc.returncode


def wait_for(
    cond: Callable[[], Any],
    timeout: float,
    what: str,
    context: Callable[[], str] | None = None,
    every: float = 0.2,
) -> Any:
    """Poll ``cond`` until truthy; AssertionError naming ``what`` after ``timeout`` s,
    with ``context()`` (the processes' logs, say) appended."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{context()}" if context is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(every)


def purge_queue(broker_url: str, queue: str) -> None:
    """Delete a test queue from the broker (best effort)."""
    from kombu import Connection

    try:
        with Connection(broker_url, connect_timeout=3) as conn:
            channel = conn.channel()
            with suppress(Exception):
                channel.queue_delete(queue)
            if broker_url.startswith("redis"):
                client = channel.client
                for key in client.scan_iter(f"*{queue}*"):
                    client.delete(key)
    except Exception:
        pass


# ---------------------------------------------------------------------------
# a tiny SMTP sink (stdlib only) for exactly-once delivery checks


class SmtpSink:
    """An SMTP server on 127.0.0.1 that accepts every message and records it.

    ``messages`` holds ``(Message-ID, recipients, raw bytes)`` per accepted
    message; ``delay`` seconds pass before the final 250 (to kill a sender
    mid-conversation).
    """

    def __init__(self, delay: float = 0.0) -> None:
        import socketserver
        import threading

        self.delay = delay
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def _line(self, text: str) -> None:
                self.wfile.write(text.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self) -> None:
                self._line("220 sink ESMTP")
                rcpts: list[str] = []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    cmd = raw.decode("latin-1").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        ehlo = "250-sink\r\n250 SIZE 10000000"
                        self._line(ehlo if verb == "EHLO" else "250 sink")
                    elif verb == "MAIL":
                        rcpts = []
                        self._line("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd.split(":", 1)[1].strip(" <>"))
                        self._line("250 OK")
                    elif verb == "DATA":
                        self._line("354 go ahead")
                        data = bytearray()
                        while True:
                            chunk = self.rfile.readline()
                            if not chunk:
                                return  # the client died mid-DATA: nothing is delivered
                            if chunk in (b".\r\n", b".\n"):
                                break
                            data += chunk
                        if sink.delay:
                            time.sleep(sink.delay)
                        mid = ""
                        for line in bytes(data).split(b"\n"):
                            if line.lower().startswith(b"message-id:"):
                                mid = line.split(b":", 1)[1].strip().decode()
                                break
                        with sink.lock:
                            sink.messages.append((mid, list(rcpts), bytes(data)))
                        self._line("250 queued")
                    elif verb == "RSET":
                        rcpts = []
                        self._line("250 OK")
                    elif verb == "NOOP":
                        self._line("250 OK")
                    elif verb == "QUIT":
                        self._line("221 bye")
                        return
                    else:
                        self._line("502 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SmtpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def message_ids(self) -> list[str]:
        with self.lock:
            return [mid for mid, _r, _d in self.messages]


def add_outbox_messages(app: Any, count: int, *, channel: str = "email") -> list[int]:
    """``count`` approved replies (one case each) waiting in the outbox; returns their ids."""
    from listener import models as m

    now = datetime.now(UTC)
    ids: list[int] = []
    with app.sessions() as session, session.begin():
        source = session.query(m.Source).order_by(m.Source.id).first()
        if source is None:
            source = m.Source(name="outbox-test", type="jsonl", config_location="-", cursor={})
            session.add(source)
            session.flush()
        for i in range(count):
            handle = f"customer{i}-{uuid.uuid4().hex[:6]}"
            author = m.Author(platform="blog", handle=handle, email=f"{handle}@mail.example")
            session.add(author)
            session.flush()
            case = m.Case(
                author_id=author.id,
                source_id=source.id,
                status="approved",
                reasons=[],
                circumstances=[],
                last_mention_at=now,
            )
            session.add(case)
            session.flush()
            msg = m.OutboxMessage(
                idempotency_key=f"test-reply-{case.id}",
                case_id=case.id,
                channel=channel,
                recipient=author.email,
                subject="Sorry about your order",
                text=f"Hi {handle}, we are so sorry. A new pair is on its way.",
                status="pending",
                created_by="tester",
            )
            session.add(msg)
            session.flush()
            ids.append(msg.id)
    return ids
