"""The plumbing of the local API servers the social-platform tests run against.

:class:`ApiServer` is a threaded HTTP server on ``127.0.0.1`` that parses each
request (query with repeated keys, JSON or form bodies), records it in
:attr:`ApiServer.received`, applies injected faults, and hands it to
:meth:`ApiServer.handle`, which a platform's server (``mastodonserver``,
``blueskyserver``, ``redditserver``, ``hnserver``) implements on top of that
platform's real recorded responses in ``../shared/data``.

Faults: :meth:`fail` (any status, headers and body — a body given as ``bytes`` is
sent as is, e.g. malformed JSON), :meth:`delay` (slow answers, optionally *after*
the request took effect: a lost response), both for the next ``times`` requests
whose path starts with a prefix.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  #: parsed JSON, a form as ``{name: value}``, or None
    raw: bytes = b""

    def q(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def token(self) -> str | None:
        """The bearer token, if any."""
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None


@dataclass
class Fault:
    method: str | None
    prefix: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    after: bool = False
    times: int = 1


Answer = tuple[int, dict[str, str], Any]


class ApiServer:
    """Base class: subclasses implement :meth:`handle`. Use as a context manager."""

    def __init__(self) -> None:
        self.received: list[Request] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None

    # -- faults and inspection --------------------------------------------

    def fail(
        self,
        prefix: str,
        status: int,
        *,
        method: str | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests under ``prefix`` with ``status``."""
        with self._lock:
            self.faults.append(
                Fault(
                    method,
                    prefix,
                    status,
                    dict(headers or {}),
                    body if body is not None else {"error": f"Injected error {status}"},
                    times=times,
                )
            )

    def delay(
        self,
        prefix: str,
        seconds: float,
        *,
        method: str | None = None,
        after: bool = False,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests under ``prefix`` ``seconds`` late."""
        with self._lock:
            self.faults.append(Fault(method, prefix, delay=seconds, after=after, times=times))

    def requests_to(self, path: str, method: str = "GET") -> list[Request]:
        with self._lock:
            return [r for r in self.received if r.path == path and r.method == method]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and path.startswith(fault.prefix)
                    and fault.method
                    in (
                        None,
                        method,
                    )
                ):
                    fault.times -= 1
                    return fault
        return None

    # -- lifecycle --------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ApiServer:
        server = self

        class Handler(_Handler):
            api = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    # -- to implement -----------------------------------------------------

    def handle(self, request: Request) -> Answer:
        """(status, headers, body): a JSON-serialisable body, or bytes sent as they are."""
        raise NotImplementedError

    def extra_headers(self, request: Request) -> dict[str, str]:
        """Headers added to every answer (rate limits)."""
        return {}


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type or raw.lstrip()[:1] in (b"{", b"["):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    if "form" in content_type:
        return {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
    return None


class _Handler(BaseHTTPRequestHandler):
    api: ApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(
            self.command,
            url.path,
            parse_qs(url.query, keep_blank_values=True),
            headers,
            _parse_body(raw, headers.get("content-type", "")),
            raw,
        )
        with self.api._lock:
            self.api.received.append(request)
        fault = self.api._take_fault(request.method, request.path)
        if fault and fault.delay and not fault.after:
            time.sleep(fault.delay)
        if fault and fault.status:
            status, out_headers, payload = fault.status, fault.headers, fault.body
        else:
            with self.api._lock:
                status, out_headers, payload = self.api.handle(request)
        if fault and fault.delay and fault.after:
            time.sleep(fault.delay)
        with self.api._lock:
            extra = self.api.extra_headers(request)
        self._answer(status, {**extra, **out_headers}, payload)

    def _answer(self, status: int, headers: dict[str, str], payload: Any) -> None:
        if isinstance(payload, bytes):
            data = payload
        else:
            data = json.dumps(payload).encode() if payload is not None else b""
        try:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() not in ("content-type", "content-length"):
                    self.send_header(k, v)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = _serve
