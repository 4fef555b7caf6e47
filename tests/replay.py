"""Replayed series for the alert tests: real tweets (../shared/data/airline-dev) with synthetic
timestamps — a week with a daily rhythm and busier weekdays, optionally a burst of
complaints in one hour — written as a JSONL source file."""

from __future__ import annotations

import csv
import json
import math
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HOUR = timedelta(hours=1)


def airline_tweets(shared_data: Path) -> list[dict[str, str]]:
    with (shared_data / "airline-dev" / "Tweets-dev.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def rate(hour: datetime, per_hour: float) -> float:
    """Posts expected in ``hour``: a day/night rhythm (peak mid-afternoon) and quieter
    weekends."""
    daily = 0.35 + 0.65 * (1 + math.sin((hour.hour - 9) / 24 * 2 * math.pi)) / 2
    weekly = 0.7 if hour.weekday() >= 5 else 1.0
    return per_hour * daily * weekly


def week(
    tweets: list[dict[str, str]],
    now: datetime,
    *,
    days: int = 7,
    per_hour: float = 10.0,
    seed: int = 18,
) -> list[dict[str, Any]]:
    """Posts for every hour of the last ``days`` days up to ``now`` (Poisson counts)."""
    rnd = random.Random(seed)
    current = now.replace(minute=0, second=0, microsecond=0)
    start = current - timedelta(days=days)
    posts: list[dict[str, Any]] = []
    h = start
    i = 0
    while h <= current:
        lam = rate(h, per_hour)
        n = _poisson(rnd, lam)
        span = (now - h).total_seconds() if h == current else 3600.0
        for _ in range(n):
            t = tweets[i % len(tweets)]
            i += 1
            at = h + timedelta(seconds=rnd.uniform(0, max(1.0, span - 1)))
            posts.append(_post(t, at, f"w{i}"))
        h += HOUR
    return posts


def burst(
    tweets: list[dict[str, str]], now: datetime, n: int = 60, seed: int = 5
) -> list[dict[str, Any]]:
    """``n`` complaints (negative tweets about late flights and lost luggage) in the current
    hour, up to ``now``."""
    rnd = random.Random(seed)
    complaints = [
        t
        for t in tweets
        if t["airline_sentiment"] == "negative"
        and t["negativereason"] in ("Late Flight", "Lost Luggage", "Cancelled Flight")
    ]
    current = now.replace(minute=0, second=0, microsecond=0)
    span = max(2.0, (now - current).total_seconds())
    return [
        _post(
            complaints[i % len(complaints)],
            current + timedelta(seconds=rnd.uniform(0, span - 1)),
            f"b{i}",
        )
        for i in range(n)
    ]


def _post(t: dict[str, str], at: datetime, pid: str) -> dict[str, Any]:
    handle = t["name"] or "someone"
    return {
        "id": pid,
        "text": t["text"],
        "author": {"handle": handle, "followers": (hash(handle) % 5000) + 10},
        "created_at": at.isoformat(),
        "url": f"https://x.example/{handle}/status/{pid}",
        "platform": "x",
    }


def _poisson(rnd: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rnd.random()
        if p <= limit:
            return k
        k += 1


def write_jsonl(path: Path, posts: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
