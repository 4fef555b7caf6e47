"""RSS / Atom / RDF (and whatever else feedparser reads) blog collector.

Split the way lemon24/reader splits an update, so each step is testable alone:

* **retrieve** (I/O) — :func:`fetch` uses one shared, thread-safe
  :class:`httpx.Client` per poll run (``ctx.shared``), a per-host
  :class:`threading.BoundedSemaphore`, conditional GET (ETag /
  Last-Modified), gzip, a total deadline and a byte cap.  A 304 — or a
  200 whose bytes hash the same as last time (servers without conditional
  GET) — is returned as ``not_modified`` without parsing.  Or
  :func:`read_local` for a ``path:`` source (its "ETag" is mtime + size).
* **parse** — :func:`parse_document` reads well-formed RSS/Atom with the
  fast path (:mod:`listener.collectors.fastfeed`: feedparser's answer, entry
  for entry, several times faster) and hands anything it is not sure of, with
  the response headers, to feedparser (which never fetches anything itself;
  ``polling.fast_parse: false`` sends every feed there).  Parsing and
  deciding (:func:`decode`) run in a small process pool
  (:mod:`listener.collectors.parsing`, ``polling.parse_workers``), one feed
  per process at a time, so they use every core while the threads fetch;
  without a pool, one parse at a time in this process (reader#261: parsing
  is CPU- and memory-heavy, the GIL gives no parallelism anyway, and this
  bounds peak memory).
* **decide** (pure) — :func:`error_for_status`, :func:`permanent_redirect_target`,
  :func:`document_problems` and :func:`entries_to_posts` turn responses and
  parsed entries into errors, state and :class:`~listener.collectors.base.Post`
  objects.  Nothing here touches the database; the pipeline stores.

Error mapping (see :mod:`listener.errors`): network errors, timeouts, 5xx and
408 → ``TransientError``; 429 and 503-with-Retry-After → ``RateLimited``;
401/403/404/other 4xx, a missing local file, a body over ``max_bytes`` and a
document that is not a feed at all → ``SourceFailing``; 410 → ``SourceGone``.
A feed that parses with problems (feedparser's *bozo*) but yields entries is
a partial result: every readable entry is kept and the problem is listed in
``CollectResult.problems``.

Source options (``options:`` in config.yaml): none are required.
``context_sentences`` (int, default 2) widens the passage around a match.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import io
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin, urlsplit

import feedparser
import httpx
import structlog

from listener.collectors import fastfeed, parsing
from listener.collectors.base import (
    Author,
    CollectContext,
    CollectResult,
    PollState,
    Post,
    Rejected,
)
from listener.errors import (
    CollectorError,
    RateLimited,
    SourceFailing,
    SourceGone,
    TransientError,
)
from listener.matching import MAX_PASSAGE_CHARS, fold, match_brand
from listener.scheduling import parse_retry_after
from listener.text import INVISIBLE, excerpt, html_to_text, mark_bad_charrefs, plain_to_text

if TYPE_CHECKING:
    from listener.config import BrandSettings, PollingSettings, SourceSettings

__all__ = [
    "FeedCollector",
    "FeedHttp",
    "Fetched",
    "body_digest",
    "close_shared",
    "decode",
    "document_problems",
    "effective_url",
    "entries_to_posts",
    "entry_raw_parts",
    "entry_to_post",
    "error_for_status",
    "fetch",
    "may_mention",
    "parse_document",
    "parse_with_feedparser",
    "permanent_redirect_target",
    "shared_http",
]

#: Key of the per-run :class:`FeedHttp` in ``CollectContext.shared``.
SHARED_KEY = "feed.http"
ACCEPT = (
    "application/atom+xml,application/rss+xml,application/rdf+xml;q=0.9,"
    "application/feed+json;q=0.9,application/xml;q=0.8,text/xml;q=0.8,*/*;q=0.1"
)
PERMANENT_REDIRECTS = frozenset({301, 308})
#: Response headers feedparser must not see: the body it gets is already decoded.
_TRANSPORT_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
#: Longest external id stored as is (the column's length); longer ids are hashed.
MAX_ID_CHARS = 500
#: Longest entry content cleaned (a bound on per-entry work; real posts are far shorter).
MAX_ENTRY_CHARS = 2_000_000
#: Entries dated further in the future than this are treated as published now.
FUTURE_SLACK = timedelta(days=1)

#: At most what html_to_text treats as markup ("<" + letter, "</", "<!", "<?" up to the
#: first ">"); CDATA sections are kept because html_to_text shows their text.
_MARKUP = re.compile(r"<(?:[a-zA-Z]|/[a-zA-Z]|!(?!\[CDATA\[)|\?)[^>]*>")
#: Printable ASCII, tab and line breaks: text made only of these has no INVISIBLE character.
_PLAIN_ASCII = bytes(range(0x20, 0x7F)) + b"\t\n\r"

_SHARED_LOCK = threading.Lock()
_PARSE_LOCK = threading.Lock()
log = structlog.get_logger(__name__)


# ---------------------------------------------------------------------------
# shared HTTP resources (one set per poll run)


class FeedHttp:
    """One poll run's HTTP client and per-host connection bounds (thread-safe)."""

    def __init__(self, polling: PollingSettings, transport: httpx.BaseTransport | None = None):
        timeout = polling.timeout.total_seconds()
        self.polling = polling
        self.client = httpx.Client(
            headers={"User-Agent": polling.user_agent, "Accept": ACCEPT},
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=polling.max_concurrency,
                max_keepalive_connections=min(polling.max_concurrency, 128),
            ),
            follow_redirects=True,
            max_redirects=10,
            transport=transport,
        )
        self._hosts: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def host_slot(self, url: str) -> threading.BoundedSemaphore:
        """The semaphore bounding concurrent requests to ``url``'s host."""
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            slot = self._hosts.get(host)
            if slot is None:
                slot = self._hosts[host] = threading.BoundedSemaphore(self.polling.per_host)
            return slot

    def close(self) -> None:
        """Close the pooled connections (the pipeline calls this when the run ends)."""
        self.client.close()


def shared_http(ctx: CollectContext) -> FeedHttp:
    """The run's :class:`FeedHttp`, created on first use (safe from many threads)."""
    with _SHARED_LOCK:
        http = ctx.shared.get(SHARED_KEY)
        if http is None:
            http = ctx.shared[SHARED_KEY] = FeedHttp(ctx.settings.polling)
            # the pipeline calls every ``closers`` entry when the run ends
            ctx.shared.setdefault("closers", []).append(http.close)
        return http  # type: ignore[no-any-return]


def close_shared(shared: dict[str, Any]) -> None:
    """Close and forget the feed collector's shared client, if one was created."""
    http = shared.pop(SHARED_KEY, None)
    if http is not None:
        http.close()


# ---------------------------------------------------------------------------
# retrieve


@dataclass
class Fetched:
    """A retrieved document (or a 304), before parsing."""

    status: int
    body: bytes | None  #: None when not modified
    headers: dict[str, str] = field(default_factory=dict)  #: lower-case names
    url: str = ""  #: the final URL (after redirects)
    permanent_url: str | None = None  #: where permanent redirects lead, if anywhere
    elapsed: float = 0.0  #: seconds

    @property
    def not_modified(self) -> bool:
        return self.body is None


def conditional_headers(state: PollState) -> dict[str, str]:
    """If-None-Match / If-Modified-Since for the stored validators."""
    headers: dict[str, str] = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def effective_url(source: SourceSettings, state: PollState) -> str:
    """The URL to poll: a permanent redirect's target, unless the configured URL changed since."""
    configured = source.url or ""
    if state.url and state.cursor.get("configured_url", configured) == configured:
        return state.url
    return configured


def permanent_redirect_target(hops: Sequence[tuple[int, str]], final_url: str) -> str | None:
    """Where the chain of permanent redirects leads; None if the first hop is temporary.

    ``hops`` are ``(status, url)`` of each redirect response in order; the
    target of hop *i* is the URL of hop *i+1* (or ``final_url``).  A 301 then
    a 302 means the 301's target is the new address, not the 302's.
    """
    urls = [u for _, u in hops] + [final_url]
    target: str | None = None
    for i, (status, _) in enumerate(hops):
        if status not in PERMANENT_REDIRECTS:
            break
        target = urls[i + 1]
    return target


def error_for_status(
    status: int, headers: Mapping[str, str], url: str, now: datetime
) -> CollectorError | None:
    """The error a final HTTP status means, or None for 2xx / 304."""
    if 200 <= status < 300 or status == 304:
        return None
    reason = f"{url}: HTTP {status}"
    if status == 410:
        return SourceGone(f"{reason} Gone: the feed was removed")
    retry_at = parse_retry_after(headers.get("retry-after"), now)
    if status == 429 or (status == 503 and retry_at is not None):
        return RateLimited(f"{reason}: the server asked us to wait", retry_at=retry_at)
    if status >= 500 or status == 408:
        return TransientError(f"{reason}: server error")
    if status in (401, 403):
        return SourceFailing(f"{reason}: access denied (does the feed need credentials?)")
    if status == 404:
        return SourceFailing(f"{reason}: not found (check the URL)")
    return SourceFailing(f"{reason}: unexpected response")


def read_capped(chunks: Iterator[bytes], max_bytes: int, deadline: float, url: str) -> bytes:
    """Join ``chunks`` but stop at ``max_bytes`` (SourceFailing) or ``deadline`` (Transient)."""
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise SourceFailing(
                f"{url}: response larger than polling.max_bytes ({max_bytes} bytes); "
                "not a normal feed, or raise the limit"
            )
        if time.monotonic() > deadline:
            raise TransientError(f"{url}: timed out reading the response")
        parts.append(chunk)
    return b"".join(parts)


def _declared_length(headers: Mapping[str, str]) -> int | None:
    try:
        return int(headers.get("content-length", ""))
    except ValueError:
        return None


@contextmanager
def _translate_httpx_errors(url: str) -> Iterator[None]:
    """Re-raise httpx's exceptions as :mod:`listener.errors` ones."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientError(f"{url}: timed out ({type(exc).__name__})") from exc
    except httpx.TooManyRedirects as exc:
        raise SourceFailing(f"{url}: too many redirects (a redirect loop?)") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise SourceFailing(f"{url}: not an http(s) URL: {exc}") from exc
    except httpx.DecodingError as exc:
        raise TransientError(f"{url}: corrupt compressed body: {exc}") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"{url}: network error: {exc or type(exc).__name__}") from exc
    except httpx.HTTPError as exc:
        raise TransientError(f"{url}: HTTP error: {exc or type(exc).__name__}") from exc
    except (ValueError, UnicodeError) as exc:  # e.g. "http://[::1" or a non-ASCII header value
        raise SourceFailing(f"{url}: invalid URL: {exc}") from exc


def fetch(http: FeedHttp, url: str, state: PollState, now: datetime | None = None) -> Fetched:
    """GET ``url`` conditionally; raises CollectorError subclasses for failures."""
    polling = http.polling
    with _translate_httpx_errors(url), http.host_slot(url):
        started = time.monotonic()  # waiting for the host's slot is not the server's fault
        deadline = started + polling.timeout.total_seconds()
        with http.client.stream("GET", url, headers=conditional_headers(state)) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            final_url = str(response.url)
            hops = [(r.status_code, str(r.url)) for r in response.history]
            moved = permanent_redirect_target(hops, final_url)
            error = error_for_status(response.status_code, headers, url, now or _utcnow())
            if error is not None:
                raise error
            if response.status_code == 304:
                return Fetched(304, None, headers, final_url, moved, time.monotonic() - started)
            length = _declared_length(headers)
            if (
                length is not None
                and length > polling.max_bytes
                and "content-encoding" not in headers
            ):
                raise SourceFailing(
                    f"{url}: response of {length} bytes is over "
                    f"polling.max_bytes ({polling.max_bytes})"
                )
            body = read_capped(response.iter_bytes(), polling.max_bytes, deadline, url)
    return Fetched(
        response.status_code, body, headers, final_url, moved, time.monotonic() - started
    )


def body_digest(body: bytes) -> str:
    """Identifies a response body, so identical bytes are not parsed twice."""
    return hashlib.sha256(body).hexdigest()


def file_stamp(path: Path) -> tuple[str, int]:
    """A local file's change stamp ("mtime_ns:size") and size; SourceFailing if unreadable."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SourceFailing(f"{path}: file not found") from None
    except OSError as exc:
        raise SourceFailing(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not path.is_file():
        raise SourceFailing(f"{path}: not a regular file")
    return f"{st.st_mtime_ns}:{st.st_size}", st.st_size


def read_local(path: Path, max_bytes: int) -> bytes:
    """A local feed file's bytes (capped like an HTTP body)."""
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise SourceFailing(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SourceFailing(f"{path}: file larger than polling.max_bytes ({max_bytes} bytes)")
    return data


# ---------------------------------------------------------------------------
# parse


def feedparser_headers(headers: Mapping[str, str], final_url: str) -> dict[str, str]:
    """Response headers as feedparser expects them: lower-case, transport ones removed,
    and an absolute http(s) ``content-location`` so relative links resolve."""
    out = {k.lower(): v for k, v in headers.items() if k.lower() not in _TRANSPORT_HEADERS}
    base = urljoin(final_url, out.get("content-location", "").strip())
    if urlsplit(base).scheme not in ("http", "https", "file"):
        base = final_url
    out["content-location"] = base
    return out


def parse_document(
    body: bytes, headers: Mapping[str, str], *, fast: bool = True
) -> feedparser.FeedParserDict:
    """The parsed feed: the fast path's when it is sure of the document (``fast``),
    else feedparser's.  ``parsed["parser"]`` says which ("fast" or "feedparser"), and
    ``parsed["fast_declined"]`` why the fast path passed."""
    return timed_parse(body, headers, fast=fast)[0]


def parse_with_feedparser(body: bytes, headers: Mapping[str, str]) -> feedparser.FeedParserDict:
    """feedparser over bytes we fetched (a stream, so it can never open a URL or file).

    feedparser's HTML sanitizer and relative-URI rewriting of embedded markup
    are off: they cost half the parse time and we never keep or render the
    HTML — :func:`~listener.text.html_to_text` drops scripts, styles and the
    rest, and entry links and ids are still resolved against the feed's URL.
    """
    return feedparser.parse(
        io.BytesIO(body),
        response_headers=dict(headers),
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def timed_parse(
    body: bytes, headers: Mapping[str, str], *, fast: bool = True
) -> tuple[feedparser.FeedParserDict, float]:
    """:func:`parse_document` and the seconds it took (not counting the wait for its turn)."""
    with _PARSE_LOCK:
        return _parse_bytes(body, headers, fast)


def _parse_bytes(
    body: bytes, headers: Mapping[str, str], fast: bool = True
) -> tuple[feedparser.FeedParserDict, float]:
    started = time.monotonic()
    declined = "polling.fast_parse is off"
    if fast:
        try:
            parsed = fastfeed.parse(body, headers)
            return parsed, time.monotonic() - started
        except fastfeed.NotHandled as exc:
            declined = str(exc)
    parsed = parse_with_feedparser(body, headers)
    parsed["parser"] = "feedparser"
    parsed["fast_declined"] = declined[:200]
    return parsed, time.monotonic() - started


def describe_exception(exc: BaseException | None) -> str:
    """One line for a feedparser bozo exception."""
    if exc is None:
        return "ill-formed feed"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def document_problems(parsed: Mapping[str, Any], where: str) -> list[str]:
    """Non-fatal problems of a parsed document; SourceFailing if it is not a feed at all.

    An ill-formed document with no entries that feedparser could not even
    recognise as a feed (no version) is an HTML page, an error page, an empty
    body or garbage: that is a source error, shown on the source.  A
    well-formed document without entries is just an empty feed; anything
    else is (at worst) a partial result.
    """
    problems: list[str] = []
    if parsed.get("bozo"):
        problems.append(f"{where}: {describe_exception(parsed.get('bozo_exception'))}")
    if problems and not parsed.get("entries") and not parsed.get("version"):
        detail = f" ({problems[0].split(': ', 1)[1]})" if problems else ""
        raise SourceFailing(f"{where}: not an RSS/Atom feed{detail}")
    return problems


# ---------------------------------------------------------------------------
# decide: entries → posts (pure)


def _text_of(detail: Mapping[str, Any] | None, value: str) -> str:
    """Clean text of a feedparser value whose ``detail`` says whether it is HTML."""
    value = value[:MAX_ENTRY_CHARS]
    kind = str((detail or {}).get("type") or "text/html")
    return html_to_text(value) if "html" in kind else plain_to_text(value)


def entry_title(entry: Mapping[str, Any]) -> str:
    """The entry's title as one line of plain text."""
    title = str(entry.get("title") or "")
    return " ".join(_text_of(entry.get("title_detail"), title).split())


def _body_detail(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The fullest of the entry's content (content:encoded, content, summary), with its type."""
    candidates: list[Mapping[str, Any]] = [c for c in entry.get("content") or [] if c]
    if entry.get("summary"):
        candidates.append(entry.get("summary_detail") or {"value": entry["summary"]})
    if not candidates:
        return None
    return max(candidates, key=lambda c: len(str(c.get("value") or "")))


def entry_body(entry: Mapping[str, Any]) -> str:
    """The clean text of the entry's fullest content."""
    best = _body_detail(entry)
    return _text_of(best, str(best.get("value") or "")) if best else ""


def entry_raw_parts(entry: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(value, is_html) of the title and the fullest content, before any cleaning."""
    parts: list[tuple[str, bool]] = []
    for detail, value in (
        (entry.get("title_detail"), entry.get("title")),
        (_body_detail(entry), None),
    ):
        raw = str(value if value is not None else (detail or {}).get("value") or "")
        if raw:
            parts.append((raw, "html" in str((detail or {}).get("type") or "text/html")))
    return parts


def may_mention(parts: Sequence[tuple[str, bool]], terms: Sequence[str]) -> bool:
    """Cheap test that is True whenever :func:`match_brand` could match the cleaned text.

    Cleaning HTML is most of the per-entry cost and ~90 % of blog entries do
    not mention the brand, so entries that cannot match are skipped before
    cleaning.  This must never say False for an entry that would match: it
    removes at most what html_to_text treats as markup (so the haystack is a
    superset of the visible text, words split by inline tags included),
    decodes entities, drops the invisible characters the cleaner drops, and
    looks for every word of some term.  Non-ASCII terms skip the shortcut
    (case folding of ``str.lower`` and ``re.IGNORECASE`` differ there).
    """
    if not terms or any(not t.isascii() for t in terms):
        return True
    texts = []
    for raw, is_html in parts:
        text = html.unescape(_MARKUP.sub("", raw)) if is_html else raw
        texts.append(fold(_visible(text)).lower())  # as match_brand compares
    haystack = "\n".join(texts)
    return any(all(word in haystack for word in t.lower().split()) for t in terms if t.strip())


def _visible(text: str) -> str:
    """``text`` without INVISIBLE characters.  None of them is printable ASCII, tab
    or line break, so ASCII text made of those only (nearly all) is returned as it
    is after a C-speed check, instead of a regular-expression pass."""
    if text.isascii() and not text.encode("ascii").translate(None, _PLAIN_ASCII):
        return text
    return INVISIBLE.sub("", text)


def entry_external_id(entry: Mapping[str, Any], title: str, body: str) -> str:
    """guid/id, else link, else a hash of title and content (stable across polls)."""
    for key in ("id", "link"):
        value = str(entry.get(key) or "").strip()
        if value:
            if len(value) > MAX_ID_CHARS:
                return "sha256:" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()
            return value
    digest = hashlib.sha256(f"{title}\x00{body}".encode("utf-8", "replace")).hexdigest()
    return f"sha256:{digest}"


def entry_published(entry: Mapping[str, Any], fetched_at: datetime) -> datetime:
    """published, else updated, else created (all UTC in feedparser), else ``fetched_at``."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if not parsed:
            continue
        try:
            when = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
        except (OverflowError, ValueError, OSError, TypeError):
            continue
        return fetched_at if when > fetched_at + FUTURE_SLACK else when
    return fetched_at


def entry_author(entry: Mapping[str, Any], feed: Mapping[str, Any], fallback: str) -> Author:
    """The entry's author, else the feed's author, else the feed's title, else ``fallback``."""
    detail = entry.get("author_detail") or {}
    feed_detail = feed.get("author_detail") or {}
    feed_title = " ".join(_text_of(feed.get("title_detail"), str(feed.get("title") or "")).split())
    name = (
        detail.get("name")
        or entry.get("author")
        or feed_detail.get("name")
        or feed.get("author")
        or feed_title
        or fallback
    )
    name = " ".join(str(name).split())[:200] or fallback
    return Author(
        handle=name,
        display_name=name,
        url=str(detail.get("href") or feed.get("link") or "") or None,
        email=str(detail.get("email") or "") or None,
    )


def entry_raw(
    entry: Mapping[str, Any], external_id: str, title: str, published: datetime
) -> dict[str, Any]:
    """A small JSON-safe summary of the entry (not its HTML)."""
    tags = [str(t.get("term")) for t in entry.get("tags") or [] if t and t.get("term")]
    return {
        "id": external_id,
        "link": str(entry.get("link") or "") or None,
        "title": title or None,
        "author": str(entry.get("author") or "") or None,
        "published": published.isoformat(),
        "tags": tags[:50],
    }


def entry_to_post(
    entry: Mapping[str, Any],
    feed: Mapping[str, Any],
    source: SourceSettings,
    brand: BrandSettings,
    fetched_at: datetime,
) -> Post | None:
    """A Post for a matching entry (any entry when ``source.match_all``); None otherwise."""
    terms = brand.match_terms
    if not source.match_all and not may_mention(entry_raw_parts(entry), [*terms, *brand.tag_terms]):
        return None
    title = entry_title(entry)
    body = entry_body(entry)
    whole = f"{title}\n\n{body}" if title and body else (title or body)
    if not whole:
        return None
    context = int(source.options.get("context_sentences", 2))
    match = match_brand(
        whole, terms, brand.exclusions, context_sentences=context, tag_terms=brand.tag_terms
    )
    if not match and not source.match_all:
        return None
    external_id = entry_external_id(entry, title, body)
    published = entry_published(entry, fetched_at)
    language = (entry.get("content") or [{}])[0].get("language") or feed.get("language")
    passage = match.passage if match else whole[:MAX_PASSAGE_CHARS]
    if title and body and passage.startswith(title + " "):
        # the passage joins sentences with spaces: keep the title its own paragraph
        passage = f"{title}\n\n{passage[len(title) + 1 :]}"
    return Post(
        external_id=external_id,
        text=passage,
        author=entry_author(entry, feed, source.name),
        published_at=published,
        full_text=body or title,
        title=title or None,
        url=str(entry.get("link") or "") or None,
        lang=str(language) if language else None,
        kind="entry",
        matched_keywords=list(match.matched),
        raw=entry_raw(entry, external_id, title, published),
    )


def entries_to_posts(
    parsed: Mapping[str, Any],
    source: SourceSettings,
    brand: BrandSettings,
    fetched_at: datetime,
    rejected: list[Rejected] | None = None,
) -> tuple[list[Post], list[str]]:
    """Posts for the matching entries, and problems with entries that could not be read.

    One unreadable entry never loses the others (it is added to ``rejected``,
    for the quarantine, when a list is given); duplicate ids keep the first.
    """
    posts: list[Post] = []
    problems: list[str] = []
    seen: set[str] = set()
    feed = parsed.get("feed") or {}
    for index, entry in enumerate(parsed.get("entries") or []):
        try:
            post = entry_to_post(entry, feed, source, brand, fetched_at)
        except Exception as exc:  # one odd entry must not lose the rest
            problems.append(f"entry {index + 1}: skipped: {describe_exception(exc)}")
            if rejected is not None:
                rejected.append(_rejected_entry(entry, index, exc))
            continue
        if post is None:
            continue
        if post.external_id in seen:
            problems.append(f"entry {index + 1}: duplicate id {post.external_id!r}: skipped")
            continue
        seen.add(post.external_id)
        posts.append(post)
    return posts, problems


def _rejected_entry(entry: Any, index: int, exc: BaseException) -> Rejected:
    ident = entry.get("id") or entry.get("link") if isinstance(entry, Mapping) else None
    text = ""
    if isinstance(entry, Mapping):
        text = str(entry.get("title") or entry.get("summary") or "")
    return Rejected(
        reason=f"entry {index + 1}: {describe_exception(exc)}",
        external_id=excerpt(str(ident), 500) if ident else None,
        excerpt=excerpt(text),
    )


# ---------------------------------------------------------------------------
# the collector


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FeedCollector:
    """Collects blog entries that mention the brand from an RSS/Atom feed.

    ``url`` (http/https) is polled over HTTP; otherwise ``path`` is read as a
    local file (relative paths resolve against the config file's folder).
    """

    needs: ClassVar[tuple[str, ...]] = ("url", "path")

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        """Poll ``source`` once; raises CollectorError subclasses on failure."""
        if source.url:
            return self._collect_url(source, state, ctx)
        if source.path:
            return self._collect_path(source, state, ctx)
        raise SourceFailing(f"source {source.name!r}: a feed needs url or path")

    def _collect_url(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        url = effective_url(source, state)
        fetched_at = _utcnow()
        fetched = fetch(shared_http(ctx), url, state, fetched_at)
        new_state = replace(state, cursor={**state.cursor, "configured_url": source.url})
        if fetched.permanent_url and fetched.permanent_url != url:
            new_state.url = fetched.permanent_url
        stats: dict[str, Any] = {"status": fetched.status, "url": fetched.url, "parsed": False}
        stats["fetch_s"] = round(fetched.elapsed, 4)
        if fetched.not_modified:
            unchanged = new_state if new_state.url != state.url else state
            return CollectResult(posts=[], state=unchanged, not_modified=True, stats=stats)
        assert fetched.body is not None
        new_state.etag = fetched.headers.get("etag") or None
        new_state.last_modified = fetched.headers.get("last-modified") or None
        stats["bytes"] = len(fetched.body)
        digest = body_digest(fetched.body)
        if state.cursor.get("body_sha256") == digest:
            # a server without conditional GET sent the same bytes: nothing to parse
            stats["unchanged_body"] = True
            return CollectResult(posts=[], state=new_state, not_modified=True, stats=stats)
        new_state.cursor["body_sha256"] = digest
        headers = feedparser_headers(fetched.headers, fetched.url)
        return self._parse(source, new_state, ctx, fetched.body, headers, fetched_at, stats)

    def _collect_path(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        path = ctx.settings.resolve_path(source.path or "")
        stamp, size = file_stamp(path)
        stats: dict[str, Any] = {"path": str(path), "bytes": size, "parsed": False}
        if state.cursor.get("file_stamp") == stamp:
            return CollectResult(posts=[], state=state, not_modified=True, stats=stats)
        body = read_local(path, ctx.settings.polling.max_bytes)
        new_state = replace(state, cursor={**state.cursor, "file_stamp": stamp})
        # a file has no Content-Type header: without one feedparser flags every local
        # feed "NonXMLContentType" (one problem on every poll)
        headers = {"content-location": path.resolve().as_uri(), "content-type": "application/xml"}
        return self._parse(source, new_state, ctx, body, headers, _utcnow(), stats)

    def _parse(
        self,
        source: SourceSettings,
        state: PollState,
        ctx: CollectContext,
        body: bytes,
        headers: Mapping[str, str],
        fetched_at: datetime,
        stats: dict[str, Any],
    ) -> CollectResult:
        """Parse ``body`` and decide which entries become posts (in a parse process)."""
        workers = parsing.worker_count(ctx.settings.polling.parse_workers)
        # a character reference to no character (&#xD800;) made the parser fail on the
        # whole feed; marked, it parses and only its entry is quarantined (listener.cleaning)
        body = mark_bad_charrefs(body)
        posts, problems, found = parsing.run(
            workers,
            decode,
            body,
            dict(headers),
            source,
            ctx.settings.brand,
            fetched_at,
            ctx.settings.polling.fast_parse,
            here=decode_here,
        )
        rejected = found.pop("rejected", [])
        stats.update(found, bytes=len(body))
        if found.get("fast_declined"):
            log.debug("feed parsed by feedparser", source=source.name, why=found["fast_declined"])
        return CollectResult(
            posts=posts, state=state, problems=problems, stats=stats, rejected=rejected
        )


def decode(
    body: bytes,
    headers: Mapping[str, str],
    source: SourceSettings,
    brand: BrandSettings,
    fetched_at: datetime,
    fast: bool = True,
) -> tuple[list[Post], list[str], dict[str, Any]]:
    """Parse a feed and decide: (posts, problems, stats); SourceFailing if not a feed.

    Pure apart from the clock: it runs in a parse process (see
    :mod:`listener.collectors.parsing`), so it takes and returns plain data.
    """
    parsed, seconds = _parse_bytes(body, headers, fast)
    return _decide(parsed, seconds, source, brand, fetched_at)


def decode_here(
    body: bytes,
    headers: Mapping[str, str],
    source: SourceSettings,
    brand: BrandSettings,
    fetched_at: datetime,
    fast: bool = True,
) -> tuple[list[Post], list[str], dict[str, Any]]:
    """:func:`decode` in this process: one parse at a time (bounds memory; the GIL
    would serialise parses anyway)."""
    parsed, seconds = timed_parse(body, headers, fast=fast)
    return _decide(parsed, seconds, source, brand, fetched_at)


def _decide(
    parsed: feedparser.FeedParserDict,
    seconds: float,
    source: SourceSettings,
    brand: BrandSettings,
    fetched_at: datetime,
) -> tuple[list[Post], list[str], dict[str, Any]]:
    stats: dict[str, Any] = {"parsed": True, "parse_s": round(seconds, 4)}
    stats["parser"] = parsed.get("parser") or "feedparser"
    if parsed.get("fast_declined"):
        stats["fast_declined"] = parsed["fast_declined"]
    problems = document_problems(parsed, source.name)
    started = time.monotonic()
    rejected: list[Rejected] = []
    posts, entry_problems = entries_to_posts(parsed, source, brand, fetched_at, rejected)
    stats["decide_s"] = round(time.monotonic() - started, 4)
    stats["rejected"] = rejected  # taken out by FeedCollector._parse (crosses the process pool)
    stats.update(entries=len(parsed.get("entries") or []), posts=len(posts))
    stats["version"] = parsed.get("version") or None
    return posts, problems + entry_problems, stats
