"""Pure parts of the X collector: budget accounting, gap bounds, page parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from listener.collectors.x import (
    Budget,
    BudgetLimits,
    _next_bounds,
    _Pages,
    parse_page,
    snowflake_time,
    x_handles,
)
from listener.config import settings_from_dict

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=UTC)


def test_budget_round_trips_through_the_cursor() -> None:
    b = Budget().counted(
        NOW,
        {
            "x-rate-limit-remaining": "7",
            "x-rate-limit-limit": "450",
            "x-rate-limit-reset": str(int(NOW.timestamp()) + 600),
        },
    )
    again = Budget.from_cursor(b.to_cursor())
    assert again == b
    assert (again.window_count, again.month_count, again.remaining) == (1, 1, 7)
    assert Budget.from_cursor({"window_count": "junk"}) == Budget()
    assert Budget.from_cursor(None) == Budget()


def test_window_and_month_roll_over() -> None:
    b = Budget(window_start=NOW, window_count=9, month="2026-11", month_count=99)
    assert b.rolled(NOW + timedelta(minutes=14)).window_count == 9
    assert b.rolled(NOW + timedelta(minutes=15)).window_count == 0
    assert b.rolled(NOW + timedelta(minutes=15)).month_count == 99
    assert b.rolled(datetime(2026, 12, 1, tzinfo=UTC)).month_count == 0


def test_blocked_until() -> None:
    limits = BudgetLimits(per_15min=10, per_month=100)
    b = Budget(window_start=NOW, window_count=9, month="2026-11", month_count=50)
    assert b.blocked_until(NOW, limits) is None
    b = b.counted(NOW)
    assert b.blocked_until(NOW, limits) == NOW + timedelta(minutes=15)
    full = Budget(window_start=NOW, month="2026-11", month_count=100)
    assert full.blocked_until(NOW, limits) == datetime(2026, 12, 1, tzinfo=UTC)
    reset = NOW + timedelta(minutes=3)
    headers = Budget(remaining=0, limit=450, reset=reset)
    assert headers.blocked_until(NOW, BudgetLimits()) == reset
    assert headers.blocked_until(reset, BudgetLimits()) is None  # X's window has reset
    assert Budget(window_count=10**6).blocked_until(NOW, BudgetLimits()) is None  # no own cap


def test_warning_fraction() -> None:
    limits = BudgetLimits(per_15min=10, per_month=1000, warn_at=0.8)
    b = Budget(window_start=NOW, window_count=7, month="2026-11", month_count=10)
    assert b.warning(NOW, limits) is None
    assert "8/10 requests this 15-minute window" in (b.counted(NOW).warning(NOW, limits) or "")
    low = Budget(
        window_start=NOW, month="2026-11", remaining=90, limit=450, reset=NOW + timedelta(minutes=5)
    )
    assert "90/450" in (low.warning(NOW, limits) or "")


def test_next_bounds() -> None:
    pages = _Pages(newest_id="300", oldest_id="200")
    assert _next_bounds("100", None, "100", True, pages) == ("300", None)
    assert _next_bounds("100", None, "100", False, pages) == (
        "100",
        {"since_id": "100", "until_id": "200", "newest_id": "300"},
    )
    gap = {"since_id": "100", "until_id": "200", "newest_id": "300"}
    filling = _Pages(newest_id="199", oldest_id="150")
    assert _next_bounds("100", gap, "100", False, filling) == (
        "100",
        {"since_id": "100", "until_id": "150", "newest_id": "300"},
    )
    assert _next_bounds("100", gap, "100", True, filling) == ("300", None)
    assert _next_bounds(None, None, None, False, pages) == ("300", None)  # first poll


def test_parse_thin_page_without_includes() -> None:
    settings = settings_from_dict({"brand": {"name": "Tweepy"}}, env={})
    page = parse_page(
        {
            "data": [
                {"id": "1578516068309794817", "text": "2022-10-07 22:42:12.637103 tweepy"},
                {"id": "1578519902427619328", "text": "RT @t6dr1ve: #Tweepy rocks"},
            ]
        },
        settings=settings,
    )
    assert page.seen == 2 and page.skipped_retweets == 1
    (post,) = page.posts
    assert post.author.handle == "unknown"
    assert post.url == "https://x.com/i/web/status/1578516068309794817"
    assert post.matched_keywords == ["Tweepy"]
    assert post.published_at == snowflake_time("1578516068309794817")
    assert page.newest_id == "1578519902427619328" and page.oldest_id == "1578516068309794817"


def test_x_handles_keeps_only_x_usernames() -> None:
    assert x_handles(["@acme", "acme_help", "@acme@mastodon.social", "@ACME", "bad handle"]) == [
        "acme",
        "acme_help",
    ]
