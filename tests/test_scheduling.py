"""Pure scheduling decisions: error backoff and Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from listener.scheduling import (
    jittered,
    next_check_after_error,
    parse_retry_after,
    retry_at_after_error,
)

BASE = timedelta(minutes=1)
MAX = timedelta(hours=6)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("errors", "minutes"), [(0, 0), (1, 1), (2, 2), (3, 4), (4, 8), (9, 256), (10, 360), (500, 360)]
)
def test_exponential_backoff_is_capped(errors: int, minutes: int) -> None:
    assert next_check_after_error(errors, BASE, MAX) == timedelta(minutes=minutes)


def test_jitter_spreads_within_bounds_and_never_exceeds_max() -> None:
    rng = random.Random(7)
    delays = [next_check_after_error(3, BASE, MAX, 0.1, rng) for _ in range(200)]
    assert all(timedelta(minutes=3.6) <= d <= timedelta(minutes=4.4) for d in delays)
    assert len(set(delays)) > 100
    capped = [next_check_after_error(50, BASE, MAX, 0.5, rng) for _ in range(200)]
    assert all(MAX * 0.5 <= d <= MAX for d in capped)


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    a = next_check_after_error(2, BASE, MAX, 0.2, random.Random(1))
    b = next_check_after_error(2, BASE, MAX, 0.2, random.Random(1))
    assert a == b


def test_jittered_leaves_zero_and_no_jitter_alone() -> None:
    assert jittered(timedelta(0), 0.5) == timedelta(0)
    assert jittered(BASE, 0) == BASE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", NOW + timedelta(seconds=120)),
        (" 0 ", NOW),
        ("Sun, 01 Mar 2026 13:00:00 GMT", NOW + timedelta(hours=1)),
        ("Sat, 28 Feb 2026 13:00:00 GMT", NOW),  # in the past: now
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: datetime | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_wins_only_when_later() -> None:
    later = NOW + timedelta(hours=2)
    assert retry_at_after_error(NOW, 1, BASE, MAX, retry_at=later) == later
    assert retry_at_after_error(NOW, 1, BASE, MAX, retry_at=NOW) == NOW + BASE
    assert retry_at_after_error(NOW, 2, BASE, MAX) == NOW + 2 * BASE
