"""Marketing's numbers from the rollups equal a count of the mentions themselves, for any
range, its previous period, and every filter combination; share of voice and terms."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import replay
from sqlalchemy import select

from listener import insight, rollups
from listener import models as m
from listener.app import App
from listener.pipeline import poll_sources
from listener.web.dashboard import date_range

WORDS = ["late", "refund", "sole", "heel", "box", "great", "love", "broken", "lace", "order"]


@pytest.fixture
def app(make_app: Callable[..., App], tmp_path: Path) -> App:
    rnd = random.Random(9)
    now = datetime.now(UTC)
    feeds = {}
    for name in ("social", "blog"):
        posts = []
        for i in range(150):
            at = now - timedelta(minutes=rnd.randint(1, 40 * 24 * 60))
            words = " ".join(rnd.choice(WORDS) for _ in range(6))
            brand = "Nimbus and Zephyr" if i % 7 == 0 else "Zephyr Shoes"
            if i % 9 == 0:
                words += " lost luggage recall"
            posts.append(
                {
                    "id": f"{name}{i}",
                    "text": f"{brand} {words}",
                    "author": {"handle": f"u{i % 40}", "followers": i * 13},
                    "created_at": at.isoformat(),
                    "url": f"https://x.example/{name}/{i}",
                }
            )
        path = tmp_path / f"{name}.jsonl"
        replay.write_jsonl(path, posts)
        feeds[name] = path
    a = make_app(
        {
            "sources": [{"name": n, "type": "jsonl", "path": str(p)} for n, p in feeds.items()],
            "dashboard": {"competitors": [{"name": "Nimbus", "terms": ["nimbus"]}]},
        }
    )
    poll_sources(a)
    rollups.ensure_brands(a)
    return a


def truth(
    app: App, since: datetime, until: datetime, source: str | None, category: str | None
) -> dict[str, Any]:
    with app.sessions() as s:
        rows = s.execute(
            select(m.Mention.published_at, m.Source.name, m.Mention.category, m.Mention.label).join(
                m.Source, m.Source.id == m.Mention.source_id
            )
        ).all()
    keep = [
        r
        for r in rows
        if since <= r[0] < until
        and (source is None or r[1] == source)
        and (category is None or r[2] == category)
    ]
    return {
        "total": len(keep),
        "labels": Counter(r[3] or "unclassified" for r in keep),
        "sources": Counter(r[1] for r in keep),
        "categories": Counter(r[2] or "none" for r in keep),
    }


@pytest.mark.parametrize("window", ["1d", "7d", "30d"])
def test_dashboard_counts_match_the_mentions(app: App, window: str) -> None:
    now = datetime.now(UTC)
    since, until, _ = date_range(window, None, None, now)
    period = insight.Period.of(since, until, now)
    with app.sessions() as s:
        categories = sorted({c for c in s.scalars(select(m.Mention.category)) if c})
    for source in (None, "social"):
        for category in (None, categories[0]):
            scope = insight.Scope(source, category)
            data = insight.dashboard(app, period, scope)
            want = truth(app, since, until, source, category)
            assert data["total"] == want["total"], (window, scope)
            assert {k: v for k, v in data["labels"].items() if v} == dict(want["labels"])
            assert {r["key"]: r["total"] for r in data["by_source"]} == dict(want["sources"])
            assert {r["key"]: r["total"] for r in data["by_category"]} == dict(want["categories"])
            assert sum(r["total"] for r in data["volume"]) == want["total"]
            before = truth(app, period.prev_since, period.prev_until, source, category)
            assert data["previous"]["total"] == before["total"], (window, scope)


def test_previous_period_ends_as_far_before_now() -> None:
    now = datetime(2026, 11, 30, 14, 25, tzinfo=UTC)
    since, until, name = date_range("7d", None, None, now)
    assert name == "7d" and since == datetime(2026, 11, 24, tzinfo=UTC)
    p = insight.Period.of(since, until, now)
    assert p.prev_since == datetime(2026, 11, 17, tzinfo=UTC)
    assert p.prev_until == datetime(2026, 11, 23, 15, tzinfo=UTC)  # 7 days before 15:00 today
    since, until, name = date_range(None, "2026-11-01", "2026-11-10", now)
    assert (
        name == "custom"
        and (until - since).days == 10
        and insight.Period.of(since, until, now).bucket == "day"
    )
    from listener.errors import ListenerError

    with pytest.raises(ListenerError, match="not a date"):
        date_range(None, "yesterday", None, now)
    with pytest.raises(ListenerError, match="starts after"):
        date_range(None, "2026-11-10", "2026-11-01", now)


def test_share_of_voice_and_terms(app: App) -> None:
    now = datetime.now(UTC)
    since, until, _ = date_range("30d", None, None, now)
    period = insight.Period.of(since, until, now)
    sov = insight.dashboard(app, period)["share_of_voice"]
    names = [b["brand"] for b in sov["brands"]]
    assert names == ["Zephyr Shoes", "Nimbus"] and sov["current"]
    with app.sessions() as s:
        texts = [
            t
            for t, at in s.execute(select(m.Mention.text, m.Mention.published_at))
            if since <= at < until
        ]
    assert sov["brands"][1]["n"] == sum("Nimbus" in t for t in texts)
    assert sov["brands"][0]["n"] == len(texts)
    words = insight.terms(app, period)
    top = [t["term"] for t in words["top"]]
    assert "zephyr" not in top and "nimbus" not in top  # brand names are not topics
    assert set(top) & set(WORDS)
