"""X (Twitter) collectors: recent search (``x_search``) and mentions (``x_mentions``).

Both read X API v2 through tweepy's :class:`tweepy.Client` with the app-only
bearer token (``x.bearer_token``), asking for authors, conversation and
reference fields, and page with ``next_token`` from the stored ``since_id``
until caught up or ``options.max_pages`` (default 5) pages were read.

Poll state (stored by the pipeline with the posts, in one transaction):

* ``since_id``: the newest post id stored; the next poll asks only for newer.
* ``cursor["gap"]``: when a poll stopped early (page cap, budget, 429) with
  older posts still unread, ``{"since_id", "until_id", "newest_id"}`` — the
  next polls read that gap first, then move ``since_id`` to ``newest_id``.
  Nothing between two polls is skipped.  (On the very first poll there is no
  lower bound, so it just starts from the newest pages.)
* ``cursor["budget"]``: request counters (15-minute window and calendar
  month) and X's last ``x-rate-limit-*`` headers; see :class:`Budget`.
* ``cursor["user_id"]`` / ``cursor["username"]`` (mentions): the account's id,
  resolved once.

Errors: 429 → :class:`RateLimited` at ``x-rate-limit-reset`` (tweepy's
``wait_on_rate_limit`` stays off: nothing sleeps); 401/403/400 →
:class:`SourceFailing` with a message a human can act on; 5xx, timeouts and
network errors → :class:`TransientError`.  A 429 or a spent budget after some
pages were read ends the poll early with those posts (``next_check_at`` set)
rather than losing them.

``x.api_base_url`` routes every request to another host (a local X-compatible
server in tests and demos) through :class:`ApiBaseAdapter`, mounted on the
client's ``requests`` session.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import requests
import tweepy
from requests.adapters import HTTPAdapter

from listener.clock import utcnow
from listener.collectors.base import (
    Author,
    CollectContext,
    CollectResult,
    PollState,
    Post,
    Rejected,
)
from listener.errors import RateLimited, SourceFailing, TransientError
from listener.matching import match_brand
from listener.text import excerpt

if TYPE_CHECKING:
    from listener.config import Settings, SourceSettings, XSettings

log = logging.getLogger(__name__)
# tweepy logs request headers (the bearer token) at DEBUG: never let it.
logging.getLogger("tweepy.client").setLevel(logging.INFO)

X_API_BASE = "https://api.twitter.com"
DEFAULT_MAX_PAGES = 5
DEFAULT_PAGE_SIZE = 100
WINDOW = timedelta(minutes=15)
SNOWFLAKE_EPOCH_MS = 1288834974657

EXPANSIONS = ["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id"]
TWEET_FIELDS = [
    "author_id",
    "created_at",
    "lang",
    "conversation_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "public_metrics",
    "entities",
]
USER_FIELDS = ["username", "name", "public_metrics", "verified"]
_X_HANDLE = re.compile(r"^@?([A-Za-z0-9_]{1,15})$")

Clock = Callable[[], datetime]


# ---------------------------------------------------------------------------
# transport: base URL rewriting, timeouts, error mapping (shared with channels.x)


class ApiBaseAdapter(HTTPAdapter):
    """Sends ``https://api.twitter.com/...`` requests to ``base_url`` with a default timeout."""

    def __init__(self, base_url: str = X_API_BASE, timeout: float = 20.0) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Rewrite the URL's origin, apply the timeout, and send."""
        url = request.url or ""
        if self.base_url != X_API_BASE and url.startswith(X_API_BASE):
            request.url = self.base_url + url[len(X_API_BASE) :]
            kwargs["proxies"] = requests.utils.get_environ_proxies(request.url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def make_client(
    x: XSettings,
    *,
    timeout: float,
    user_agent: str | None = None,
    user_context: bool = False,
) -> tweepy.Client:
    """A tweepy v2 client returning raw responses, routed to ``x.api_base_url``."""

    def secret(name: str) -> str | None:
        value = getattr(x, name)
        return value.get_secret_value() if value is not None else None

    if user_context:
        client = tweepy.Client(
            consumer_key=secret("consumer_key"),
            consumer_secret=secret("consumer_secret"),
            access_token=secret("access_token"),
            access_token_secret=secret("access_token_secret"),
            return_type=requests.Response,
            wait_on_rate_limit=False,
        )
    else:
        client = tweepy.Client(
            bearer_token=secret("bearer_token"),
            return_type=requests.Response,
            wait_on_rate_limit=False,
        )
    client.session.mount(X_API_BASE, ApiBaseAdapter(x.api_base_url, timeout))
    if user_agent:
        client.user_agent = f"{user_agent} {client.user_agent}"
    return client


def reset_time(headers: Mapping[str, str], now: datetime) -> datetime:
    """When a 429 ends: ``x-rate-limit-reset`` (epoch seconds), else 15 minutes from now."""
    raw = headers.get("x-rate-limit-reset")
    try:
        return datetime.fromtimestamp(int(raw), UTC) if raw else now + WINDOW
    except (TypeError, ValueError, OverflowError):
        return now + WINDOW


def api_detail(err: tweepy.HTTPException) -> str:
    """X's own explanation of an error response, one line."""
    messages = [m for m in err.api_messages if m]
    try:
        body = err.response.json()
        for key in ("detail", "title"):
            if not messages and isinstance(body, dict) and body.get(key):
                messages.append(str(body[key]))
    except ValueError:
        pass
    return "; ".join(messages).replace("\n", " ")[:300] or str(err.response.reason or "")


def translate_error(exc: Exception, *, what: str, credentials: str, now: datetime) -> Exception:
    """A tweepy/requests exception as the matching :mod:`listener.errors` exception."""
    if isinstance(exc, tweepy.TooManyRequests):
        retry_at = reset_time(exc.response.headers, now)
        return RateLimited(f"X rate limit reached ({what}); retry at {retry_at:%H:%M}Z", retry_at)
    if isinstance(exc, tweepy.Unauthorized):
        return SourceFailing(f"X rejected the {credentials} (401): check {_env_hint(credentials)}")
    if isinstance(exc, tweepy.Forbidden):
        return SourceFailing(
            f"X refused {what} (403): {api_detail(exc)} — check the app's access level "
            f"and the {credentials}"
        )
    if isinstance(exc, tweepy.BadRequest):
        return SourceFailing(f"X rejected {what} (400): {api_detail(exc)}")
    if isinstance(exc, tweepy.NotFound):
        return SourceFailing(f"X has no such resource for {what} (404): {api_detail(exc)}")
    if isinstance(exc, tweepy.TwitterServerError):
        return TransientError(f"X server error ({exc.response.status_code}) for {what}")
    if isinstance(exc, tweepy.HTTPException):
        return TransientError(f"X answered {exc.response.status_code} for {what}")
    if isinstance(exc, requests.Timeout):
        return TransientError(f"X did not answer in time ({what})")
    if isinstance(exc, requests.RequestException):
        return TransientError(f"cannot reach X ({what}): {type(exc).__name__}")
    return exc


def _env_hint(credentials: str) -> str:
    if credentials == "bearer token":
        return "X_BEARER_TOKEN"
    return "X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN, X_ACCESS_TOKEN_SECRET"


# ---------------------------------------------------------------------------
# pure: query, budget, parsing


def x_handles(handles: list[str]) -> list[str]:
    """The brand handles that are X usernames, without '@' (``@a@host`` ones are not)."""
    out: list[str] = []
    for h in handles:
        m = _X_HANDLE.match(h.strip())
        if m and m.group(1).lower() not in (o.lower() for o in out):
            out.append(m.group(1))
    return out


def build_search_query(query: str, brand_handles: list[str]) -> str:
    """``query`` plus ``-is:retweet`` and ``-from:<handle>`` for each brand handle, if absent."""
    q = query.strip()
    lowered = q.lower()
    if "-is:retweet" not in lowered:
        q += " -is:retweet"
    for handle in brand_handles:
        if f"-from:{handle.lower()}" not in lowered:
            q += f" -from:{handle}"
    return q


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def _month(now: datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


def _next_month(now: datetime) -> datetime:
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class BudgetLimits:
    """Our own caps (``None``: no cap) and the warning fraction."""

    per_15min: int | None = None
    per_month: int | None = None
    warn_at: float = 0.8

    @classmethod
    def for_source(cls, x: XSettings, options: Mapping[str, Any]) -> BudgetLimits:
        """``x.budget``, overridden by the source's ``options`` of the same names."""
        b = x.budget
        return cls(
            per_15min=options.get("requests_per_15min", b.requests_per_15min),
            per_month=options.get("requests_per_month", b.requests_per_month),
            warn_at=float(options.get("warn_at", b.warn_at)),
        )


@dataclass(frozen=True)
class Budget:
    """Request counters kept in ``PollState.cursor["budget"]``, so they survive restarts.

    ``window_start``/``window_count`` count this source's requests in the current
    15-minute window, ``month``/``month_count`` in the calendar month (UTC);
    ``remaining``/``limit``/``reset`` are X's last ``x-rate-limit-*`` headers for
    the source's timeline endpoint.  All methods are pure.
    """

    window_start: datetime | None = None
    window_count: int = 0
    month: str | None = None
    month_count: int = 0
    remaining: int | None = None
    limit: int | None = None
    reset: datetime | None = None

    @classmethod
    def from_cursor(cls, data: Any) -> Budget:
        """Read the stored counters (anything malformed starts afresh)."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(
                window_start=_parse_time(data.get("window_start")),
                window_count=int(data.get("window_count") or 0),
                month=data.get("month"),
                month_count=int(data.get("month_count") or 0),
                remaining=_opt_int(data.get("remaining")),
                limit=_opt_int(data.get("limit")),
                reset=_parse_time(data.get("reset")),
            )
        except (TypeError, ValueError):
            return cls()

    def to_cursor(self) -> dict[str, Any]:
        """JSON-serialisable form for ``PollState.cursor``."""
        return {
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_count": self.window_count,
            "month": self.month,
            "month_count": self.month_count,
            "remaining": self.remaining,
            "limit": self.limit,
            "reset": self.reset.isoformat() if self.reset else None,
        }

    def rolled(self, now: datetime) -> Budget:
        """Counters with an expired window, month or header reset started afresh."""
        b = self
        if b.window_start is None or now >= b.window_start + WINDOW:
            b = replace(b, window_start=now, window_count=0)
        if b.month != _month(now):
            b = replace(b, month=_month(now), month_count=0)
        if b.reset is not None and now >= b.reset:
            b = replace(b, remaining=None, reset=None)
        return b

    def counted(self, now: datetime, headers: Mapping[str, str] | None = None) -> Budget:
        """After one request: counts plus one, and X's rate-limit headers if given."""
        b = self.rolled(now)
        b = replace(b, window_count=b.window_count + 1, month_count=b.month_count + 1)
        if headers and headers.get("x-rate-limit-remaining") is not None:
            b = replace(
                b,
                remaining=_opt_int(headers.get("x-rate-limit-remaining")),
                limit=_opt_int(headers.get("x-rate-limit-limit")),
                reset=reset_time(headers, now),
            )
        return b

    def blocked_until(self, now: datetime, limits: BudgetLimits) -> datetime | None:
        """When the next request may be made, or ``None`` if it may be made now."""
        b = self.rolled(now)
        waits = []
        if limits.per_15min is not None and b.window_count >= limits.per_15min:
            waits.append((b.window_start or now) + WINDOW)
        if limits.per_month is not None and b.month_count >= limits.per_month:
            waits.append(_next_month(now))
        if b.remaining is not None and b.remaining <= 0 and b.reset is not None:
            waits.append(b.reset)
        return max(waits) if waits else None

    def warning(self, now: datetime, limits: BudgetLimits) -> str | None:
        """A health warning once any budget is ``warn_at`` used, else ``None``."""
        b = self.rolled(now)
        parts = []
        if limits.per_15min and b.window_count >= limits.warn_at * limits.per_15min:
            parts.append(f"{b.window_count}/{limits.per_15min} requests this 15-minute window")
        if limits.per_month and b.month_count >= limits.warn_at * limits.per_month:
            parts.append(f"{b.month_count}/{limits.per_month} requests this month")
        used = b.limit - b.remaining if b.limit and b.remaining is not None else 0
        if b.limit and used >= limits.warn_at * b.limit:
            parts.append(f"X rate limit: {b.remaining}/{b.limit} requests left")
        if not parts:
            return None
        return "X request budget nearly spent: " + "; ".join(parts)


def _opt_int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def snowflake_time(tweet_id: str) -> datetime | None:
    """When a post with this id was created (ids are time-ordered snowflakes)."""
    try:
        ms = (int(tweet_id) >> 22) + SNOWFLAKE_EPOCH_MS
    except ValueError:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC)


def newer_id(a: str | None, b: str | None) -> str | None:
    """The larger of two post ids (``None`` counts as smallest)."""
    if a is None or b is None:
        return a or b
    return a if int(a) >= int(b) else b


def older_id(a: str | None, b: str | None) -> str | None:
    """The smaller of two post ids (``None`` counts as largest)."""
    if a is None or b is None:
        return a or b
    return a if int(a) <= int(b) else b


def is_retweet(tweet: Mapping[str, Any]) -> bool:
    """A plain retweet (``RT @…`` text when the reference fields are missing)."""
    refs = tweet.get("referenced_tweets")
    if refs is not None:
        return any(r.get("type") == "retweeted" for r in refs)
    return str(tweet.get("text", "")).startswith("RT @")


def _kind(tweet: Mapping[str, Any]) -> tuple[str, str | None]:
    """``("reply", id)``, ``("quote", id)`` or ``("post", None)``."""
    refs = {r.get("type"): r.get("id") for r in tweet.get("referenced_tweets") or []}
    if "replied_to" in refs:
        return "reply", refs["replied_to"]
    if "quoted" in refs:
        return "quote", refs["quoted"]
    return "post", None


def _author(tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]]) -> Author:
    author_id = tweet.get("author_id")
    user = users.get(author_id or "")
    if not user:
        return Author(handle=str(author_id or "unknown"), external_id=author_id)
    metrics = user.get("public_metrics") or {}
    username = user.get("username") or str(author_id)
    return Author(
        handle=username,
        display_name=user.get("name"),
        external_id=str(user.get("id") or author_id),
        followers=metrics.get("followers_count"),
        verified=bool(user.get("verified")),
        url=f"https://x.com/{username}",
    )


@dataclass
class PageResult:
    """The posts of one page of tweets, and what was left out."""

    posts: list[Post] = field(default_factory=list)
    newest_id: str | None = None
    oldest_id: str | None = None
    seen: int = 0
    skipped_retweets: int = 0
    skipped_own: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def parse_page(
    payload: Mapping[str, Any],
    *,
    settings: Settings,
    skip_authors: frozenset[str] = frozenset(),
) -> PageResult:
    """Turn one X API v2 tweets page (``data`` + ``includes``) into posts.

    Retweets and posts by ``skip_authors`` (user ids or lower-cased usernames:
    the brand's own accounts) are left out; replies and quotes are kept.  A
    tweet that cannot be read (no numeric id, odd fields) is rejected (the
    pipeline quarantines it) and the page goes on.
    """
    includes = payload.get("includes") or {}
    users = {u["id"]: u for u in includes.get("users") or [] if isinstance(u, dict) and "id" in u}
    out = PageResult()
    for tweet in payload.get("data") or []:
        out.seen += 1
        try:
            tid = str(tweet["id"])
            int(tid)  # ids are numbers: since_id/until_id arithmetic relies on it
            out.newest_id = newer_id(out.newest_id, tid)
            out.oldest_id = older_id(out.oldest_id, tid)
            if is_retweet(tweet):
                out.skipped_retweets += 1
                continue
            post = tweet_to_post(tweet, users, settings)
        except Exception as exc:  # one odd tweet must not lose the page
            ident = tweet.get("id") if isinstance(tweet, dict) else None
            text = tweet.get("text") if isinstance(tweet, dict) else tweet
            out.rejected.append(
                Rejected(
                    reason=f"unreadable tweet: {type(exc).__name__}: {exc}"[:300],
                    external_id=str(ident) if ident is not None else None,
                    excerpt=excerpt(text if isinstance(text, str) else repr(text)),
                )
            )
            continue
        if post.author.external_id in skip_authors or post.author.handle.lower() in skip_authors:
            out.skipped_own += 1
            continue
        out.posts.append(post)
    return out


def tweet_to_post(
    tweet: Mapping[str, Any], users: Mapping[str, Mapping[str, Any]], settings: Settings
) -> Post:
    """One tweet (with its author from ``includes.users``) as a :class:`Post`."""
    tid = str(tweet["id"])
    text = str(tweet.get("text", ""))
    author = _author(tweet, users)
    kind, in_reply_to = _kind(tweet)
    brand = settings.brand
    match = match_brand(text, brand.match_terms, brand.exclusions, tag_terms=brand.tag_terms)
    published = _parse_time(tweet.get("created_at")) or snowflake_time(tid) or utcnow()
    user = users.get(tweet.get("author_id") or "")
    path = f"{author.handle}/status/{tid}" if user else f"i/web/status/{tid}"
    return Post(
        external_id=tid,
        text=match.passage or text,
        full_text=text,
        author=author,
        published_at=published,
        url=f"https://x.com/{path}",
        lang=tweet.get("lang"),
        conversation_id=tweet.get("conversation_id"),
        in_reply_to_id=in_reply_to,
        kind=kind,
        matched_keywords=list(match.matched),
        raw={"tweet": dict(tweet), "author": dict(user) if user else None},
    )


# ---------------------------------------------------------------------------
# I/O


@dataclass
class _Poll:
    """Mutable bookkeeping of one collect call."""

    client: tweepy.Client
    settings: Settings
    limits: BudgetLimits
    budget: Budget
    clock: Clock
    request_count: int = 0

    def call(
        self, fn: Callable[..., requests.Response], what: str, track: bool = True, **params: Any
    ) -> dict[str, Any]:
        """One API request within the budget; returns the JSON body."""
        now = self.clock()
        until = self.budget.blocked_until(now, self.limits)
        if until is not None:
            raise RateLimited(
                f"X request budget spent ({what}); next request at {until:%Y-%m-%d %H:%M}Z",
                until,
            )
        self.request_count += 1
        try:
            response = fn(**params)
        except (tweepy.TweepyException, requests.RequestException) as exc:
            headers = getattr(getattr(exc, "response", None), "headers", None)
            self.budget = self.budget.counted(now, headers if track else None)
            raise translate_error(exc, what=what, credentials="bearer token", now=now) from exc
        self.budget = self.budget.counted(now, response.headers if track else None)
        try:
            body = response.json()
        except ValueError as exc:
            raise TransientError(f"X sent a response that is not JSON ({what})") from exc
        return body if isinstance(body, dict) else {}


FetchPage = Callable[[_Poll, str | None, str | None, str | None], dict[str, Any]]


class _XCollector:
    """Shared polling loop of the X collectors (since_id, paging, gaps, budget)."""

    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, clock: Clock = utcnow) -> None:
        self.clock = clock

    def collect(
        self, source: SourceSettings, state: PollState, ctx: CollectContext
    ) -> CollectResult:
        """Read what is new since ``state`` (see the module docs)."""
        settings = ctx.settings
        if settings.x.bearer_token is None or not settings.x.bearer_token.get_secret_value():
            raise SourceFailing(
                "x.bearer_token is not set: put ${X_BEARER_TOKEN} in config.yaml and set it"
            )
        poll = _Poll(
            client=self._client(settings, ctx),
            settings=settings,
            limits=BudgetLimits.for_source(settings.x, source.options),
            budget=Budget.from_cursor(state.cursor.get("budget")).rolled(self.clock()),
            clock=self.clock,
        )
        cursor = dict(state.cursor)
        fetch, skip = self.prepare(source, poll, cursor)
        return self._run(source, state, cursor, poll, fetch, skip)

    def _client(self, settings: Settings, ctx: CollectContext) -> tweepy.Client:
        token = settings.x.bearer_token.get_secret_value() if settings.x.bearer_token else ""
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        key = f"x_client:{settings.x.api_base_url}:{digest}"
        client = ctx.shared.get(key)
        if client is None:
            client = make_client(
                settings.x,
                timeout=settings.polling.timeout.total_seconds(),
                user_agent=settings.polling.user_agent,
            )
            ctx.shared[key] = client
        return client

    def prepare(
        self, source: SourceSettings, poll: _Poll, cursor: dict[str, Any]
    ) -> tuple[FetchPage, frozenset[str]]:
        """The page fetcher and the authors to skip; may update ``cursor``."""
        raise NotImplementedError

    def _run(
        self,
        source: SourceSettings,
        state: PollState,
        cursor: dict[str, Any],
        poll: _Poll,
        fetch: FetchPage,
        skip: frozenset[str],
    ) -> CollectResult:
        gap = cursor.get("gap") if isinstance(cursor.get("gap"), dict) else None
        since = gap["since_id"] if gap else state.since_id
        until = gap["until_id"] if gap else None
        max_pages = int(source.options.get("max_pages", DEFAULT_MAX_PAGES))
        result = CollectResult(posts=[], state=state)
        pages = _Pages()
        token: str | None = None
        stop: datetime | None = None
        while pages.count < max_pages:
            try:
                payload = fetch(poll, since, until, token)
            except RateLimited as exc:
                if pages.count == 0:
                    raise
                stop = exc.retry_at
                result.problems.append(f"stopped after {pages.count} page(s): {exc}")
                break
            except SourceFailing as exc:
                if not (pages.count == 0 and since and _bound_too_old(exc)):
                    raise
                # after a long outage X refuses ids older than its search window (7 days)
                result.problems.append(f"{exc}; reading from the newest posts instead")
                since = until = gap = None
                continue
            pages.add(parse_page(payload, settings=poll.settings, skip_authors=skip))
            token = (payload.get("meta") or {}).get("next_token")
            if not token:
                break
        caught_up = token is None and stop is None
        new_since, cursor["gap"] = _next_bounds(state.since_id, gap, since, caught_up, pages)
        if cursor["gap"] is None:
            del cursor["gap"]
        if not caught_up and since is None:
            result.problems.append("first poll stopped early: older posts were not read")
        cursor["budget"] = poll.budget.to_cursor()
        result.posts = pages.posts
        result.rejected = pages.rejected
        result.state = replace(state, since_id=new_since, cursor=cursor)
        result.next_check_at = stop or (self.clock() if "gap" in cursor else None)
        result.warning = poll.budget.warning(self.clock(), poll.limits)
        result.stats = {
            "requests": poll.request_count,
            "pages": pages.count,
            "tweets_seen": pages.seen,
            "retweets_skipped": pages.skipped_retweets,
            "own_skipped": pages.skipped_own,
            "caught_up": caught_up,
        }
        return result


@dataclass
class _Pages:
    """Accumulates page results."""

    posts: list[Post] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    count: int = 0
    seen: int = 0
    skipped_retweets: int = 0
    skipped_own: int = 0
    newest_id: str | None = None
    oldest_id: str | None = None

    def add(self, page: PageResult) -> None:
        self.count += 1
        self.posts.extend(page.posts)
        self.rejected.extend(page.rejected)
        self.seen += page.seen
        self.skipped_retweets += page.skipped_retweets
        self.skipped_own += page.skipped_own
        self.newest_id = newer_id(self.newest_id, page.newest_id)
        self.oldest_id = older_id(self.oldest_id, page.oldest_id)


def _next_bounds(
    stored_since: str | None,
    gap: dict[str, Any] | None,
    since: str | None,
    caught_up: bool,
    pages: _Pages,
) -> tuple[str | None, dict[str, Any] | None]:
    """The since_id to store and the gap still to read (pure)."""
    newest = newer_id(gap.get("newest_id") if gap else None, pages.newest_id)
    if caught_up or since is None:
        return newer_id(stored_since, newest), None
    until = pages.oldest_id or (gap["until_id"] if gap else None)
    return stored_since, {"since_id": since, "until_id": until, "newest_id": newest}


def _bound_too_old(exc: SourceFailing) -> bool:
    """Whether X refused the request because ``since_id``/``until_id`` is too old."""
    message = str(exc)
    return "400" in message and ("since_id" in message or "until_id" in message)


def _page_size(source: SourceSettings, minimum: int) -> int:
    return max(minimum, min(100, int(source.options.get("page_size", DEFAULT_PAGE_SIZE))))


def _common_params(since: str | None, until: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "expansions": EXPANSIONS,
        "tweet_fields": TWEET_FIELDS,
        "user_fields": USER_FIELDS,
    }
    if since:
        params["since_id"] = since
    if until:
        params["until_id"] = until
    return params


class XSearchCollector(_XCollector):
    """``x_search``: X recent search for ``source.query`` (retweets and the brand excluded).

    Options: ``max_pages`` (5), ``page_size`` (10-100, default 100), and the budget
    overrides ``requests_per_15min``, ``requests_per_month``, ``warn_at``.
    """

    needs: ClassVar[tuple[str, ...]] = ("query",)

    def prepare(
        self, source: SourceSettings, poll: _Poll, cursor: dict[str, Any]
    ) -> tuple[FetchPage, frozenset[str]]:
        """Build the query once; skip posts by the brand's own handles."""
        handles = x_handles(poll.settings.brand.handles)
        query = build_search_query(source.query or "", handles)
        size = _page_size(source, 10)

        def fetch(p: _Poll, since: str | None, until: str | None, token: str | None) -> dict:
            params = _common_params(since, until)
            if token:
                params["next_token"] = token
            return p.call(
                p.client.search_recent_tweets,
                f"search {source.name!r}",
                query=query,
                max_results=size,
                **params,
            )

        return fetch, frozenset(h.lower() for h in handles)


class XMentionsCollector(_XCollector):
    """``x_mentions``: the mentions timeline of ``source.username`` (id cached in the cursor).

    Options as for :class:`XSearchCollector` (``page_size`` 5-100).
    """

    needs: ClassVar[tuple[str, ...]] = ("username",)

    def prepare(
        self, source: SourceSettings, poll: _Poll, cursor: dict[str, Any]
    ) -> tuple[FetchPage, frozenset[str]]:
        """Resolve the account id (once) and page its mentions."""
        username = (source.username or "").strip().lstrip("@")
        user_id = self._user_id(username, poll, cursor)
        size = _page_size(source, 5)

        def fetch(p: _Poll, since: str | None, until: str | None, token: str | None) -> dict:
            params = _common_params(since, until)
            if token:
                params["pagination_token"] = token
            return p.call(
                p.client.get_users_mentions,
                f"mentions of @{username}",
                id=user_id,
                max_results=size,
                **params,
            )

        return fetch, frozenset({user_id})

    @staticmethod
    def _user_id(username: str, poll: _Poll, cursor: dict[str, Any]) -> str:
        cached = cursor.get("user_id")
        if cached and str(cursor.get("username", "")).lower() == username.lower():
            return str(cached)
        body = poll.call(poll.client.get_user, f"user @{username}", track=False, username=username)
        data = body.get("data")
        if not isinstance(data, dict) or "id" not in data:
            detail = "; ".join(str(e.get("detail", "")) for e in body.get("errors") or [])
            raise SourceFailing(
                f"X has no account @{username}: check the source's username "
                f"({detail or 'not found'})"
            )
        cursor["user_id"], cursor["username"] = str(data["id"]), username
        return str(data["id"])
