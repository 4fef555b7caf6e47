"""A local X-API-v2-compatible server for tests, built on recorded responses.

It loads the vcrpy cassettes in ``../shared/data/x-api`` (gzip ``!!binary``
bodies are decompressed) and serves them on ``http://127.0.0.1:<port>``:

* **Replayed routes**: any recorded request, matched by method + path (+ the
  query where several recordings share a path), answered with the recorded
  status, rate-limit headers and body.
* **Timelines** (``/2/tweets/search/recent``, ``/2/users/:id/mentions``,
  ``/2/users/:id/tweets``) are seeded with the recorded tweets and behave like
  X: newest first, ``since_id``/``until_id``, ``max_results`` pages with
  ``next_token``, ``includes.users``/``includes.tweets`` for the expansions,
  ``-is:retweet`` and ``-from:`` in search queries.  Tests add tweets and users
  with :meth:`XServer.add_tweets`.
* **Users** by username: every user object in the recordings is known.
* **Posting** (``POST /2/tweets``): a tweet by the authenticated account (the
  recorded ``/2/users/me``) with a fresh id, in the recorded create-tweet
  shape; it appears in that account's ``/tweets`` timeline with the
  ``@author`` reply prefix and HTML escaping X applies.  Duplicate text is
  refused with 403 as X does.
* **Faults**: :meth:`XServer.fail` (429 with ``x-rate-limit-reset``, 401, 503…),
  :meth:`XServer.delay` (slow answers — optionally *after* the request took
  effect, a lost response), :meth:`XServer.set_rate_limit` (X's per-endpoint
  counters and headers).
* Every request is recorded in :attr:`XServer.received`.
"""

from __future__ import annotations

import copy
import functools
import gzip
import html
import json
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

SNOWFLAKE_EPOCH_MS = 1288834974657
_USER_TIMELINE = re.compile(r"^/2/users/(\d+)/(mentions|tweets)$")
_BY_USERNAME = re.compile(r"^/2/users/by/username/([A-Za-z0-9_]+)$")
SEARCH = "/2/tweets/search/recent"
_DROP_HEADERS = {
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "set-cookie",
    "connection",
    "date",
}


# ---------------------------------------------------------------------------
# cassettes


class _CassetteLoader(yaml.SafeLoader):
    """SafeLoader (``!!binary`` → bytes) that reads ``!!python/…`` tags as plain data."""


def _construct_python(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_CassetteLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_python)


@dataclass
class Interaction:
    """One recorded request and its response."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    body: bytes
    source: str
    gzipped: bool = False  #: the recorded body was a gzip ``!!binary``

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def _body_bytes(body: Any) -> tuple[bytes, bool]:
    raw = body.get("string", b"") if isinstance(body, dict) else body
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    raw = raw or b""
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw), True
    return raw, False


@functools.cache
def load_cassettes(folder: Path) -> tuple[Interaction, ...]:
    """Every interaction of every ``*.yaml`` cassette in ``folder`` (parsed once)."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CassetteLoader)
        for item in data.get("interactions") or []:
            req, resp = item["request"], item["response"]
            headers = {
                k.lower(): v[0] if isinstance(v, list) else v
                for k, v in (resp.get("headers") or {}).items()
            }
            url = urlsplit(req["uri"])
            body, gzipped = _body_bytes(resp.get("body"))
            out.append(
                Interaction(
                    method=req["method"].upper(),
                    path=url.path,
                    query=dict(parse_qsl(url.query)),
                    status=int(resp["status"]["code"]),
                    headers=headers,
                    body=body,
                    source=path.name,
                    gzipped=gzipped,
                )
            )
    return tuple(out)


# ---------------------------------------------------------------------------
# server state


@dataclass
class Received:
    """A request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any


@dataclass
class Fault:
    """An injected failure or delay for requests whose path starts with ``prefix``."""

    method: str | None
    prefix: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    after: bool = False  #: delay after the request took effect (a lost response)
    times: int = 1


@dataclass
class RateLimit:
    """X's per-endpoint counter, sent as ``x-rate-limit-*`` headers."""

    limit: int
    remaining: int
    reset: int


def snowflake(ts: float, seq: int = 0) -> str:
    """A post id for time ``ts`` (epoch seconds)."""
    return str(((int(ts * 1000) - SNOWFLAKE_EPOCH_MS) << 22) | (seq & 0x3FFFFF))


class XServer:
    """The server (see module docs). Use as a context manager."""

    def __init__(self, cassettes: Path) -> None:
        self.interactions = load_cassettes(cassettes)
        self.received: list[Received] = []
        self.faults: list[Fault] = []
        self.rate_limits: dict[str, RateLimit] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.tweets: dict[str, dict[str, Any]] = {}
        self.timelines: dict[str, list[str]] = {}
        self.created: list[dict[str, Any]] = []
        self.posted_texts: set[str] = set()
        self._lock = threading.RLock()
        self._seq = 0
        self.me = self._seed()
        self._httpd: ThreadingHTTPServer | None = None

    # -- setup ------------------------------------------------------------

    def _seed(self) -> dict[str, Any]:
        me: dict[str, Any] = {}
        for it in self.interactions:
            body = it.json() if it.status < 300 else None
            if not isinstance(body, dict):
                continue
            body = copy.deepcopy(body)
            data = body.get("data")
            if it.method == "GET" and it.path == "/2/users/me":
                me = data
            key = self._timeline_key(it.path)
            if it.method == "GET" and key and isinstance(data, list):
                self.add_tweets(key, data)
            for user in _iter_users(it.path, data, body):
                self.users.setdefault(user["id"], user)
        return me

    @staticmethod
    def _timeline_key(path: str) -> str | None:
        if path == SEARCH or _USER_TIMELINE.match(path):
            return path
        return None

    def add_users(self, users: Iterable[dict[str, Any]]) -> None:
        """Make users known (for ``includes.users`` and lookups by username)."""
        with self._lock:
            for user in users:
                self.users[str(user["id"])] = dict(user)

    def add_tweets(
        self, timeline: str, tweets: Iterable[dict[str, Any]], users: Iterable[dict] = ()
    ) -> None:
        """Add tweets to a timeline path, e.g. ``/2/tweets/search/recent``."""
        with self._lock:
            self.add_users(users)
            ids = self.timelines.setdefault(timeline, [])
            for tweet in tweets:
                tid = str(tweet["id"])
                self.tweets[tid] = dict(tweet)
                if tid not in ids:
                    ids.append(tid)
            ids.sort(key=int, reverse=True)

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
        default = {"title": f"Error {status}", "detail": f"Injected error {status}"}
        with self._lock:
            self.faults.append(
                Fault(method, prefix, status, dict(headers or {}), body or default, times=times)
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

    def set_rate_limit(self, prefix: str, limit: int, remaining: int, reset: int) -> None:
        """Count requests under ``prefix`` as X does; 429 once ``remaining`` is 0."""
        with self._lock:
            self.rate_limits[prefix] = RateLimit(limit, remaining, reset)

    def requests_to(self, path: str, method: str = "GET") -> list[Received]:
        """The received requests for exactly ``path``."""
        with self._lock:
            return [r for r in self.received if r.path == path and r.method == method]

    # -- lifecycle --------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> XServer:
        server = self

        class Handler(_Handler):
            x = server

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

    # -- request handling -------------------------------------------------

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and path.startswith(fault.prefix)
                    and (fault.method in (None, method))
                ):
                    fault.times -= 1
                    return fault
        return None

    def rate_headers(self, path: str) -> tuple[dict[str, str], bool]:
        """X's rate-limit headers for ``path`` and whether the limit is spent."""
        with self._lock:
            for prefix, rl in self.rate_limits.items():
                if path.startswith(prefix):
                    spent = rl.remaining <= 0
                    rl.remaining = max(0, rl.remaining - 1)
                    return {
                        "x-rate-limit-limit": str(rl.limit),
                        "x-rate-limit-remaining": str(rl.remaining),
                        "x-rate-limit-reset": str(rl.reset),
                    }, spent
        return {}, False

    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        """Route one request: (status, headers, JSON body)."""
        with self._lock:
            if method == "GET" and self._timeline_key(path):
                return 200, {}, self._timeline(path, query)
            if method == "POST" and path == "/2/tweets":
                return self._create(body or {})
            m = _BY_USERNAME.match(path)
            if method == "GET" and m:
                return 200, {}, self._user_by_name(m.group(1))
            return self._replay(method, path, query)

    def _replay(
        self, method: str, path: str, query: dict[str, str]
    ) -> tuple[int, dict[str, str], Any]:
        candidates = [i for i in self.interactions if i.method == method and i.path == path]
        exact = [i for i in candidates if all(query.get(k) == v for k, v in i.query.items())]
        chosen = (exact or candidates or [None])[0]
        if chosen is None:
            return 404, {}, {"title": "Not Found Error", "detail": f"no route {method} {path}"}
        headers = {k: v for k, v in chosen.headers.items() if k not in _DROP_HEADERS}
        return chosen.status, headers, chosen.json()

    def _user_by_name(self, username: str) -> dict[str, Any]:
        for user in self.users.values():
            if user.get("username", "").lower() == username.lower():
                return {"data": user}
        return {
            "errors": [
                {
                    "value": username,
                    "detail": f"Could not find user with username: [{username}].",
                    "title": "Not Found Error",
                    "parameter": "username",
                    "resource_type": "user",
                    "type": "https://api.twitter.com/2/problems/resource-not-found",
                }
            ]
        }

    def _timeline(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        ids = [t for t in self.timelines.get(path, []) if _in_range(t, query)]
        if path == SEARCH:
            ids = [t for t in ids if _matches_query(self.tweets[t], self.users, query)]
        token = query.get("next_token") or query.get("pagination_token")
        if token:
            ids = [t for t in ids if int(t) < int(token.removeprefix("next-"))]
        size = max(5, min(100, int(query.get("max_results", 10))))
        page, more = ids[:size], len(ids) > size
        return self._page(page, more, query)

    def _page(self, ids: list[str], more: bool, query: dict[str, str]) -> dict[str, Any]:
        tweets = [self.tweets[t] for t in ids]
        out: dict[str, Any] = {"meta": {"result_count": len(tweets)}}
        if tweets:
            out["data"] = tweets
            out["meta"].update(newest_id=ids[0], oldest_id=ids[-1])
        if more and ids:
            out["meta"]["next_token"] = f"next-{ids[-1]}"
        includes = self._includes(tweets, query.get("expansions", "").split(","))
        if includes:
            out["includes"] = includes
        return out

    def _includes(self, tweets: list[dict], expansions: list[str]) -> dict[str, Any]:
        refs = [
            self.tweets[r["id"]]
            for t in tweets
            for r in t.get("referenced_tweets") or []
            if "referenced_tweets.id" in expansions and r.get("id") in self.tweets
        ]
        author_ids = []
        if "author_id" in expansions:
            author_ids += [t.get("author_id") for t in tweets]
        if "referenced_tweets.id.author_id" in expansions:
            author_ids += [t.get("author_id") for t in refs]
        users = [self.users[a] for a in dict.fromkeys(author_ids) if a in self.users]
        includes: dict[str, Any] = {}
        if users:
            includes["users"] = users
        if refs:
            includes["tweets"] = refs
        return includes

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        text = str(body.get("text", ""))
        reply_to = (body.get("reply") or {}).get("in_reply_to_tweet_id")
        me = str(self.me["id"])
        stored_text = html.escape(text, quote=False)
        if text in self.posted_texts:
            return (
                403,
                {},
                {
                    "title": "Forbidden",
                    "detail": "You are not allowed to create a Tweet with duplicate content.",
                    "type": "about:blank",
                    "status": 403,
                },
            )
        tweet: dict[str, Any] = {"id": self._new_id(), "author_id": me, "text": stored_text}
        if reply_to:
            target = self.tweets.get(str(reply_to))
            if target is None:
                return (
                    403,
                    {},
                    {
                        "title": "Forbidden",
                        "detail": "You attempted to reply to a Tweet that is deleted or not "
                        "visible to you.",
                        "status": 403,
                    },
                )
            author = self.users.get(str(target.get("author_id")), {}).get("username")
            if author:
                tweet["text"] = f"@{author} {stored_text}"
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": str(reply_to)}]
            tweet["conversation_id"] = target.get("conversation_id", str(reply_to))
            tweet["in_reply_to_user_id"] = target.get("author_id")
        tweet["created_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        tweet["edit_history_tweet_ids"] = [tweet["id"]]
        self.created.append(tweet)
        self.posted_texts.add(text)
        self.add_tweets(f"/2/users/{me}/tweets", [tweet])
        return 201, {}, {"data": {"id": tweet["id"], "text": text}}

    def _new_id(self) -> str:
        self._seq += 1
        newest = max((int(t) for t in self.tweets), default=0)
        return str(max(int(snowflake(time.time(), self._seq)), newest + 1))


def _iter_users(path: str, data: Any, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """User objects in a recorded response body."""
    if (
        path.startswith("/2/users")
        or path.startswith("/2/lists")
        or "liking_users" in path
        or "retweeted_by" in path
    ):
        items = data if isinstance(data, list) else [data]
        yield from (u for u in items if isinstance(u, dict) and "username" in u)
    yield from (body.get("includes") or {}).get("users") or []


def _in_range(tid: str, query: dict[str, str]) -> bool:
    since, until = query.get("since_id"), query.get("until_id")
    return (since is None or int(tid) > int(since)) and (until is None or int(tid) < int(until))


def _matches_query(tweet: dict, users: dict[str, dict], query: dict[str, str]) -> bool:
    """The ``-is:retweet`` and ``-from:`` operators of a search query."""
    q = query.get("query", "").lower()
    refs = tweet.get("referenced_tweets")
    is_rt = (
        any(r.get("type") == "retweeted" for r in refs)
        if refs is not None
        else str(tweet.get("text", "")).startswith("RT @")
    )
    if "-is:retweet" in q and is_rt:
        return False
    author = users.get(str(tweet.get("author_id")), {}).get("username", "").lower()
    return not (author and f"-from:{author}" in q)


class _Handler(BaseHTTPRequestHandler):
    """HTTP plumbing: parse, record, apply faults and rate limits, answer JSON."""

    x: XServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw and raw.lstrip()[:1] in (b"{", b"[") else None
        method = self.command
        with self.x._lock:
            self.x.received.append(
                Received(
                    method, url.path, query, {k.lower(): v for k, v in self.headers.items()}, body
                )
            )
        fault = self.x.take_fault(method, url.path)
        if fault and fault.delay and not fault.after:
            time.sleep(fault.delay)
        rate, spent = self.x.rate_headers(url.path)
        if fault and fault.status:
            status, headers, payload = fault.status, fault.headers, fault.body
        elif spent:
            status, headers, payload = (
                429,
                {},
                {"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
            )
        else:
            status, headers, payload = self.x.handle(method, url.path, query, body)
        if fault and fault.delay and fault.after:
            time.sleep(fault.delay)
        self._answer(status, {**headers, **rate}, payload)

    def _answer(self, status: int, headers: dict[str, str], payload: Any) -> None:
        data = json.dumps(payload).encode() if payload is not None else b""
        try:
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() != "content-type":
                    self.send_header(k, v)
            self.send_header("content-type", "application/json; charset=utf-8")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


# ---------------------------------------------------------------------------
# helpers for the tests

TEST_ENV = {
    "X_BEARER_TOKEN": "test-bearer-token-SECRET",
    "X_CONSUMER_KEY": "ck-SECRET",
    "X_CONSUMER_SECRET": "cs-SECRET",
    "X_ACCESS_TOKEN": "at-SECRET",
    "X_ACCESS_TOKEN_SECRET": "ats-SECRET",
}

X_BLOCK = {
    "bearer_token": "${X_BEARER_TOKEN}",
    "consumer_key": "${X_CONSUMER_KEY}",
    "consumer_secret": "${X_CONSUMER_SECRET}",
    "access_token": "${X_ACCESS_TOKEN}",
    "access_token_secret": "${X_ACCESS_TOKEN_SECRET}",
}


def settings_dict(
    base_url: str,
    sources: list[dict[str, Any]] | None = None,
    *,
    budget: dict[str, Any] | None = None,
    timeout: str = "2s",
) -> dict[str, Any]:
    """A config mapping for @Twitter as the brand, reading X at ``base_url``."""
    x: dict[str, Any] = {"api_base_url": base_url, **X_BLOCK}
    if budget:
        x["budget"] = budget
    return {
        "brand": {"name": "Twitter", "handles": ["@Twitter", "@TwitterSupport"]},
        "x": x,
        "polling": {"timeout": timeout},
        "sources": sources or [],
    }
