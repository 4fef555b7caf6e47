"""JSON APIs over httpx: the small client the social collectors and reply channels share.

Mastodon, Bluesky (XRPC), Reddit and the Hacker News search API are each a few
JSON endpoints, so every platform module is a thin layer over :class:`JsonApi`
rather than a full SDK (see docs/design.md for why): one ``base_url`` per API
(a local server in tests), the polling timeout and ``polling.max_bytes`` on every
response, never a sleep, and one error mapping:

* 429 → :class:`RateLimited` at ``Retry-After`` or the rate-limit reset;
* 401/403 → :class:`SourceFailing` naming the credentials to check;
* 400/404/422 and other 4xx → :class:`SourceFailing` with the API's own message;
* 410 → :class:`SourceGone`;
* 5xx, 408, timeouts, network errors and bodies that are not JSON → :class:`TransientError`.

Rate limits are read from the headers every platform sends (Mastodon's
``X-RateLimit-*`` with an ISO reset time, Reddit's ``X-Ratelimit-*`` with seconds
until reset, Bluesky's ``RateLimit-*`` with an epoch reset) into a
:class:`RateLimit` that collectors keep in their poll state: a source whose
allowance is spent is not asked again before the reset.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from listener.errors import (
    CollectorError,
    RateLimited,
    SourceFailing,
    SourceGone,
    TransientError,
)
from listener.scheduling import parse_retry_after

if TYPE_CHECKING:
    from collections.abc import Iterator

    from listener.collectors.base import CollectContext
    from listener.config import PollingSettings

#: Longest error detail quoted from an API response.
MAX_DETAIL = 300


# ---------------------------------------------------------------------------
# rate limits (pure)


def _number(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def reset_time(value: str | None, now: datetime) -> datetime | None:
    """A rate-limit reset header as a time: an ISO 8601 timestamp (Mastodon), epoch
    seconds (Bluesky) or seconds from now (Reddit)."""
    if not value:
        return None
    number = _number(value)
    if number is None:
        try:
            when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    if number < 0:
        return None
    try:
        if number > 1_000_000_000:  # an epoch timestamp
            return datetime.fromtimestamp(number, UTC)
        return now + timedelta(seconds=number)
    except (OverflowError, ValueError, OSError):
        return None


@dataclass(frozen=True)
class RateLimit:
    """What the API said about our allowance in its last response."""

    limit: float | None = None
    remaining: float | None = None
    reset: datetime | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], now: datetime) -> RateLimit | None:
        """Read ``X-RateLimit-*`` / ``RateLimit-*`` headers; ``None`` when there are none."""
        h = {k.lower(): v for k, v in headers.items()}

        def pick(name: str) -> str | None:
            return h.get(f"x-ratelimit-{name}") or h.get(f"ratelimit-{name}")

        remaining = _number(pick("remaining"))
        if remaining is None:
            return None
        limit = _number(pick("limit"))
        used = _number(pick("used"))
        if limit is None and used is not None:
            limit = used + remaining
        return cls(limit, remaining, reset_time(pick("reset"), now))

    @classmethod
    def from_cursor(cls, data: Any) -> RateLimit:
        """The stored form (anything malformed reads as "nothing known")."""
        if not isinstance(data, dict):
            return cls()
        reset = reset_time(str(data.get("reset") or ""), datetime.now(UTC))
        return cls(_number(data.get("limit")), _number(data.get("remaining")), reset)

    def to_cursor(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "reset": self.reset.isoformat() if self.reset else None,
        }

    def blocked_until(self, now: datetime) -> datetime | None:
        """When the next request may be made, if the allowance is spent until then."""
        if self.remaining is not None and self.remaining < 1 and self.reset and self.reset > now:
            return self.reset
        return None


def retry_at(headers: Mapping[str, str], now: datetime) -> datetime | None:
    """When a 429 (or 503) says to come back: Retry-After, else the rate-limit reset."""
    h = {k.lower(): v for k, v in headers.items()}
    when = parse_retry_after(h.get("retry-after"), now)
    if when is None:
        rate = RateLimit.from_headers(h, now)
        when = rate.reset if rate else None
    return when


# ---------------------------------------------------------------------------
# errors (pure)


def api_detail(body: bytes) -> str:
    """The API's own explanation of an error, one line (JSON ``error``/``message``…)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    parts: list[str] = []
    if isinstance(data, dict):
        for key in ("error_description", "message", "error", "detail", "title", "reason"):
            value = data.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value)
    text = "; ".join(parts) if parts else body[:MAX_DETAIL].decode("utf-8", "replace")
    return " ".join(text.split())[:MAX_DETAIL]


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    platform: str,
    what: str,
    credentials: str,
    now: datetime,
) -> CollectorError | None:
    """The error a final HTTP status means (``None`` for 2xx)."""
    if 200 <= status < 300:
        return None
    detail = api_detail(body)
    said = f": {detail}" if detail else ""
    if status == 429:
        when = retry_at(headers, now)
        at = f"; retry at {when:%H:%M}Z" if when else ""
        return RateLimited(f"{platform} rate limit reached ({what}){at}", when)
    if status == 503 and parse_retry_after(headers.get("retry-after"), now):
        return RateLimited(
            f"{platform} is unavailable ({what}); it asked us to wait",
            parse_retry_after(headers.get("retry-after"), now),
        )
    if status >= 500 or status == 408:
        return TransientError(f"{platform} server error {status} ({what})")
    if status == 401:
        return SourceFailing(f"{platform} rejected the credentials (401, {what}): {credentials}")
    if status == 403:
        return SourceFailing(f"{platform} refused {what} (403){said}: {credentials}")
    if status == 410:
        return SourceGone(f"{platform}: {what} is gone (410){said}")
    if status == 404:
        return SourceFailing(f"{platform} has no such resource for {what} (404){said}")
    return SourceFailing(f"{platform} rejected {what} ({status}){said}")


# ---------------------------------------------------------------------------
# the client


@dataclass
class ApiResponse:
    """A successful response: status, headers (lower-case), parsed JSON, rate limit."""

    status: int
    headers: dict[str, str]
    body: Any
    rate: RateLimit | None


Clock = Callable[[], datetime]


class JsonApi:
    """One platform's JSON API at ``base_url`` (thread-safe; share it per poll run)."""

    def __init__(
        self,
        platform: str,
        base_url: str,
        polling: PollingSettings,
        *,
        credentials: str = "check the account's credentials",
        headers: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.polling = polling
        self.credentials = credentials
        self.clock = clock or (lambda: datetime.now(UTC))
        self.client = httpx.Client(
            headers={
                "User-Agent": polling.user_agent,
                "Accept": "application/json",
                **dict(headers or {}),
            },
            timeout=httpx.Timeout(polling.timeout.total_seconds()),
            follow_redirects=True,
            max_redirects=5,
            transport=transport,
        )

    def url(self, path: str) -> str:
        """``path`` under the base URL (an absolute URL is kept as is)."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Any = None,
        data: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        accept_status: tuple[int, ...] = (),
    ) -> ApiResponse:
        """One request; errors are raised as :mod:`listener.errors` (see the module docs).

        Statuses in ``accept_status`` are returned instead of raised (e.g. a 400 whose
        body a channel wants to read)."""
        url = self.url(path)
        with _translated(self.platform, what):
            started = time.monotonic()
            deadline = started + self.polling.timeout.total_seconds()
            with self.client.stream(
                method,
                url,
                params=params,
                data=data,
                json=json_body,
                headers=dict(headers or {}),
                auth=auth,  # type: ignore[arg-type]
            ) as response:
                resp_headers = {k.lower(): v for k, v in response.headers.items()}
                body = self._read(response.iter_bytes(), deadline, what)
        now = self.clock()
        status = response.status_code
        if status not in accept_status:
            error = error_for_status(
                status,
                resp_headers,
                body,
                platform=self.platform,
                what=what,
                credentials=self.credentials,
                now=now,
            )
            if error is not None:
                raise error
        try:
            parsed = json.loads(body) if body.strip() else None
        except ValueError as exc:
            raise TransientError(
                f"{self.platform} sent a response that is not JSON ({what})"
            ) from exc
        return ApiResponse(status, resp_headers, parsed, RateLimit.from_headers(resp_headers, now))

    def get(self, path: str, *, what: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, what=what, **kwargs)

    def post(self, path: str, *, what: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, what=what, **kwargs)

    def _read(self, chunks: Iterator[bytes], deadline: float, what: str) -> bytes:
        cap = self.polling.max_bytes
        parts: list[bytes] = []
        total = 0
        for chunk in chunks:
            total += len(chunk)
            if total > cap:
                raise SourceFailing(
                    f"{self.platform}: the response to {what} is larger than polling.max_bytes "
                    f"({cap} bytes)"
                )
            if time.monotonic() > deadline:
                raise TransientError(f"{self.platform}: timed out reading {what}")
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        self.client.close()


@contextmanager
def _translated(platform: str, what: str) -> Iterator[None]:
    """httpx's exceptions as :mod:`listener.errors` ones."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise TransientError(f"{platform} did not answer in time ({what})") from exc
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise SourceFailing(f"{platform}: invalid API URL ({what}): {exc}") from exc
    except httpx.TooManyRedirects as exc:
        raise SourceFailing(f"{platform}: too many redirects ({what})") from exc
    except httpx.HTTPError as exc:
        raise TransientError(f"cannot reach {platform} ({what}): {type(exc).__name__}") from exc


_SHARED_LOCK = threading.Lock()


def shared_api(ctx: CollectContext, key: str, factory: Callable[[], JsonApi]) -> JsonApi:
    """The poll run's client for ``key`` (created on first use, closed when the run ends)."""
    with _SHARED_LOCK:
        api = ctx.shared.get(key)
        if api is None:
            api = ctx.shared[key] = factory()
            ctx.shared.setdefault("closers", []).append(api.close)
        return api  # type: ignore[no-any-return]


def checked_rate(rate: RateLimit, platform: str, what: str, now: datetime) -> None:
    """Raise :class:`RateLimited` when the stored allowance is spent until a later reset."""
    until = rate.blocked_until(now)
    if until is not None:
        raise RateLimited(
            f"{platform} rate limit spent ({what}); next request at {until:%Y-%m-%d %H:%M}Z",
            until,
        )


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` allowed, naive read as UTC) or epoch seconds, as aware UTC."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, ValueError, OSError):
            return None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------
# hostile input (pure)

#: Longest post text kept (Reddit's own limit for a post is 40,000 characters).
MAX_TEXT = 50_000
#: Posts dated further ahead than this are taken as published now (clock skew, bad data).
FUTURE_SLACK = timedelta(days=1)


def fix_surrogates(text: str) -> str:
    """``text`` with lone surrogates (``"\\ud800"`` in JSON) replaced by U+FFFD: they cannot
    be encoded as UTF-8, so the database would refuse the post."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def clean_json(value: Any, max_text: int = MAX_TEXT) -> Any:
    """A JSON-like value with every string repaired (:func:`fix_surrogates`) and cut to
    ``max_text`` characters, so one hostile item cannot stop its source."""
    if isinstance(value, str):
        return fix_surrogates(value[:max_text])
    if isinstance(value, list):
        return [clean_json(v, max_text) for v in value]
    if isinstance(value, dict):
        return {fix_surrogates(str(k)[:200]): clean_json(v, max_text) for k, v in value.items()}
    return value


def text_of(value: Any, max_text: int = MAX_TEXT) -> str:
    """A string field as clean text ("" for anything that is not a string)."""
    return fix_surrogates(value[:max_text]) if isinstance(value, str) else ""


def published_at(value: Any, now: datetime) -> datetime:
    """A post's time (:func:`parse_time`), ``now`` when missing, invalid or in the future."""
    when = parse_time(value)
    if when is None or when > now + FUTURE_SLACK:
        return now
    return when
