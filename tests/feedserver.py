"""A real HTTP server on 127.0.0.1 for feed collector tests and the feed benchmark.

Standard library only (``http.server`` in a daemon thread).  It serves:

* **files** under named roots at ``/files/<root>/<relative path>``, with the
  headers a file declares in its header comment (the feedparser corpus
  convention: ``Header: Content-type: text/xml; charset=utf-8`` lines), a
  content-based ETag (unless the file declares one) honoured with 304s, and
  gzip when the query says ``?gzip=1``;
* **scripted routes** registered with :meth:`FeedServer.route`: a
  :class:`Reply` (or a function of the :class:`Request` returning one) with
  any status, headers, delay, streamed body or a lying ``Content-Length``.

Every request is recorded in :attr:`FeedServer.requests` so tests can check
what the client sent (conditional headers, User-Agent).  ``latency`` adds a
fixed delay to every response (the benchmark's "remote" feeds).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

#: ``Header: Name: value`` lines in a corpus file's header comment.
DECLARED_HEADER = re.compile(rb"^Header:\s+([^:\r\n]+):[ \t]*(.*?)\s*$", re.MULTILINE)
CONTENT_TYPES = {
    ".json": "application/feed+json",
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
}
DEFAULT_CONTENT_TYPE = "application/xml"


@dataclass(frozen=True)
class Request:
    """What the client sent."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  #: lower-case names


@dataclass
class Reply:
    """A scripted response."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""  #: an iterable is streamed without Content-Length
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  #: seconds before the status line
    content_length: int | None = None  #: overrides the real length (a truncated body)


Route = Reply | Callable[[Request], Reply]


def declared_headers(data: bytes) -> list[tuple[str, str]]:
    """Headers a file declares in its leading comment (only the first 4 KiB is read)."""
    head = data[:4096]
    end = head.find(b"-->")
    if end >= 0:
        head = head[:end]
    return [
        (k.decode("latin-1").strip(), v.decode("latin-1").strip())
        for k, v in DECLARED_HEADER.findall(head)
    ]


def file_reply(path: Path, request: Request) -> Reply:
    """A file with its declared headers, an ETag, 304 and optional gzip."""
    data = path.read_bytes()
    headers = {"Content-Type": CONTENT_TYPES.get(path.suffix, DEFAULT_CONTENT_TYPE)}
    for name, value in declared_headers(data):
        canonical = "Content-Type" if name.lower() == "content-type" else name
        headers[canonical] = value
    if not any(k.lower() == "etag" for k in headers):
        headers["ETag"] = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
    etag = next(v for k, v in headers.items() if k.lower() == "etag")
    if etag and request.headers.get("if-none-match") == etag:
        return Reply(304, b"", {"ETag": etag})
    if request.query.get("gzip") == ["1"]:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    return Reply(200, data, headers)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms Nagle/delayed-ACK stall per keep-alive response
    wbufsize = 64 * 1024  # headers and body leave in one write (flushed per request)
    server: _Server

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client hung up on purpose (size cap, timeout)

    def finish(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().finish()

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        request = Request(
            "GET",
            unquote(split.path),
            parse_qs(split.query),
            {k.lower(): v for k, v in self.headers.items()},
        )
        owner = self.server.owner
        owner.record(request)
        try:
            reply = owner.reply_for(request)
        except Exception as exc:  # a broken test route shows as a 599, not a hang
            reply = Reply(599, repr(exc).encode(), {"Content-Type": "text/plain"})
        if owner.latency or reply.delay:
            time.sleep(owner.latency + reply.delay)
        try:
            self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if isinstance(reply.body, bytes):
            length = reply.content_length if reply.content_length is not None else len(reply.body)
            self.send_header("Content-Length", str(length))
            if length != len(reply.body):
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(reply.body)
            return
        self.send_header("Connection", "close")  # body ends when the connection does
        self.close_connection = True
        self.end_headers()
        for chunk in reply.body:
            self.wfile.write(chunk)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # bursts of hundreds of connects must not hit SYN retries
    owner: FeedServer


class FeedServer:
    """A threaded HTTP server on ``host`` (a free port), used as a context manager."""

    def __init__(
        self, roots: dict[str, Path] | None = None, latency: float = 0.0, host: str = "127.0.0.1"
    ) -> None:
        self.roots = dict(roots or {})
        self.latency = latency
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = _Server((host, 0), _Handler)
        self._server.owner = self
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FeedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return f"http://{self.host}:{self.port}{path}"

    def file_url(self, root: str, relative: str | Path, query: str = "") -> str:
        """URL serving ``relative`` under the named root."""
        rel = Path(relative).as_posix()
        return self.url(f"/files/{root}/{rel}" + (f"?{query}" if query else ""))

    def route(self, path: str, reply: Route) -> str:
        """Serve ``reply`` at ``path``; returns its URL."""
        self.routes[path] = reply
        return self.url(path)

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def requests_to(self, path: str) -> list[Request]:
        """Requests recorded for ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reply_for(self, request: Request) -> Reply:
        """The route's reply, a file's, or 404."""
        route = self.routes.get(request.path)
        if route is not None:
            return route(request) if callable(route) else route
        if request.path.startswith("/files/"):
            root_name, _, rel = request.path[len("/files/") :].partition("/")
            root = self.roots.get(root_name)
            if root is not None:
                path = (root / rel).resolve()
                if path.is_file() and path.is_relative_to(root.resolve()):
                    return file_reply(path, request)
        return Reply(404, b"not found", {"Content-Type": "text/plain"})


def endless(chunk: bytes = b"<!-- padding -->" * 4096, limit: int = 2**31) -> Iterator[bytes]:
    """A body that goes on (up to ``limit`` bytes): the "2 GB feed"."""
    sent = 0
    while sent < limit:
        yield chunk
        sent += len(chunk)


def dribble(parts: Iterable[bytes], pause: float) -> Iterator[bytes]:
    """Yield ``parts`` with ``pause`` seconds between them (a slow-drip server)."""
    for i, part in enumerate(parts):
        if i:
            time.sleep(pause)
        yield part


# ---------------------------------------------------------------------------
# helpers for collector tests and the benchmark


def feed_settings(
    brand: dict[str, Any] | None = None, polling: dict[str, Any] | None = None, **extra: Any
) -> Any:
    """Settings for feed tests (built with ``settings_from_dict``, like the loader)."""
    from listener.config import settings_from_dict

    data: dict[str, Any] = {
        "brand": brand
        or {"name": "Acme", "keywords": ["Acme Shoes"], "exclusions": ["Acme Corporation"]},
        "polling": {"timeout": "5s", **(polling or {})},
        **extra,
    }
    return settings_from_dict(data, env={})


def feed_source(
    url: str | None = None, path: str | None = None, *, match_all: bool = False, name: str = "blog"
) -> Any:
    """A ``type: feed`` source."""
    from listener.config import SourceSettings

    return SourceSettings(name=name, type="feed", url=url, path=path, match_all=match_all)


def rss(items: Iterable[dict[str, str]], title: str = "Test Blog") -> bytes:
    """A small RSS 2.0 document; each item's keys become child elements (values as given)."""
    body = "".join(
        "<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in item.items()) + "</item>" for item in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{title}</title><link>http://blog.example/</link>{body}</channel></rss>"
    ).encode()
