"""Pure scheduling decisions: when to check a source next.

Modelled on miniflux's scheduler: after an error the next check moves out
exponentially (``base · 2^(n-1)``, capped at ``max``), with random jitter so
sources that failed together do not retry together.  A server's
``Retry-After`` wins when it asks for longer.  No I/O and no clock reads
here: callers pass ``now`` and the random generator.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

#: 2**_MAX_EXPONENT · base is far past any sane maximum; avoids huge floats.
_MAX_EXPONENT = 40


class Uniform(Protocol):
    """The part of :class:`random.Random` used here (so tests can pass a fixed one)."""

    def uniform(self, a: float, b: float) -> float: ...


def jittered(delay: timedelta, jitter: float, rng: Uniform | None = None) -> timedelta:
    """``delay`` spread by ±``jitter`` (a fraction, e.g. 0.1 for ±10 %)."""
    if jitter <= 0 or delay <= timedelta(0):
        return delay
    factor = (rng or random).uniform(1.0 - jitter, 1.0 + jitter)
    return delay * factor


def next_check_after_error(
    error_count: int,
    base: timedelta,
    max: timedelta,  # the name the issue uses; shadows the builtin here only
    jitter: float = 0.0,
    rng: Uniform | None = None,
) -> timedelta:
    """Delay before the next check after ``error_count`` consecutive errors (1 = first).

    ``base, 2·base, 4·base, …`` capped at ``max``, then spread by ±``jitter``
    and capped at ``max`` again, so the result is always within
    ``[0, max]`` and never below ``base · (1 - jitter)``.

    >>> next_check_after_error(3, timedelta(minutes=1), timedelta(hours=6))
    datetime.timedelta(seconds=240)
    """
    if error_count <= 0:
        return timedelta(0)
    exponent = min(error_count - 1, _MAX_EXPONENT)
    delay = min(max, base * (2**exponent))
    return min(max, jittered(delay, jitter, rng))


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """The time a ``Retry-After`` header asks for (delta-seconds or HTTP-date), or None.

    Dates in the past come back as ``now``; unreadable values as None.
    """
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.astimezone(UTC), now)


def retry_at_after_error(
    now: datetime,
    error_count: int,
    base: timedelta,
    max: timedelta,
    jitter: float = 0.0,
    rng: Uniform | None = None,
    retry_at: datetime | None = None,
) -> datetime:
    """When to check next after an error: backoff, or the server's ``retry_at`` if later."""
    backoff = now + next_check_after_error(error_count, base, max, jitter, rng)
    if retry_at is not None and retry_at > backoff:
        return retry_at
    return backoff
