"""Hourly/daily rollups stay equal to a count of the mentions: at ingest, on edits, on
re-classification, after a migration of an existing database, and after a rebuild."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from listener import models as m
from listener import rollups
from listener.app import App
from listener.pipeline import poll_sources


def truth(app: App) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    """(hourly, daily) counts computed from the mentions themselves."""
    hourly: Counter[tuple[Any, ...]] = Counter()
    daily: Counter[tuple[Any, ...]] = Counter()
    with app.sessions() as s:
        for mt in s.scalars(select(m.Mention)):
            hour = rollups.hour_of(mt.published_at)
            key = (mt.source_id, mt.category or "", mt.label or "unclassified")
            hourly[(hour, *key)] += 1
            daily[(hour.replace(hour=0), *key)] += 1
    return hourly, daily


def stored(app: App) -> tuple[Counter[tuple[Any, ...]], Counter[tuple[Any, ...]]]:
    with app.sessions() as s:
        hourly = Counter(
            {
                (r.hour, r.source_id, r.category, r.label): r.n
                for r in s.scalars(select(m.MentionRollup))
                if r.n
            }
        )
        daily = Counter(
            {
                (r.day, r.source_id, r.category, r.label): r.n
                for r in s.scalars(select(m.MentionRollupDaily))
                if r.n
            }
        )
    return hourly, daily


def facets_agree(app: App) -> bool:
    """mention_facets_daily holds the daily cross summed per facet."""
    expected: Counter[tuple[Any, ...]] = Counter()
    for (day, sid, cat, label), n in truth(app)[1].items():
        expected[("all", day, "", label)] += n
        expected[("source", day, str(sid), label)] += n
        expected[("category", day, cat, label)] += n
    with app.sessions() as s:
        got = Counter(
            {
                (r.facet, r.day, r.value, r.label): r.n
                for r in s.scalars(select(m.MentionFacetDaily))
                if r.n
            }
        )
    return got == expected


def brand_counts(app: App) -> Counter[str]:
    out: Counter[str] = Counter()
    with app.sessions() as s:
        for r in s.scalars(select(m.BrandRollupDaily)):
            out[r.brand] += r.n
    return out


def write_posts(path: Path, posts: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")


def post(i: int, text: str, at: datetime) -> dict[str, Any]:
    return {"id": f"p{i}", "text": text, "author": f"user{i}", "created_at": at.isoformat()}


def test_rollups_follow_ingest_edits_and_reclassification(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    feed = tmp_path / "posts.jsonl"
    now = datetime.now(UTC)
    posts = [
        post(1, "Zephyr Shoes lost my package, furious", now - timedelta(hours=30)),
        post(2, "Love my new Zephyr Shoes!", now - timedelta(hours=3)),
        post(3, "Zephyr vs Nimbus: Nimbus wins on price", now - timedelta(hours=3)),
        post(4, "Zephyr Shoes refund still missing after 3 weeks", now - timedelta(minutes=5)),
    ]
    write_posts(feed, posts)
    app = make_app(
        {
            "sources": [{"name": "social", "type": "jsonl", "path": str(feed)}],
            "dashboard": {"competitors": [{"name": "Nimbus", "terms": ["Nimbus"]}]},
        }
    )
    poll_sources(app)
    assert stored(app) == truth(app) and facets_agree(app)
    assert sum(stored(app)[0].values()) == 4
    assert brand_counts(app) == Counter({"Zephyr Shoes": 4, "Nimbus": 1})

    # an edit that changes the text (and so maybe the label) moves the count, never doubles it
    posts[1]["text"] = "My Zephyr Shoes fell apart after a week, terrible quality"
    write_posts(feed, posts)
    with app.sessions.begin() as s:  # the jsonl collector reads from its offset: start over
        src = s.scalars(select(m.Source)).one()
        src.cursor = {}
    poll_sources(app)
    assert stored(app) == truth(app)
    assert sum(stored(app)[0].values()) == 4

    # re-classification by another model version moves counts between labels
    from listener.scheduler import classify_mentions

    class Flip:
        version = "flip-1"

        def predict(self, texts: list[str]) -> list[Any]:
            from classifiers import Prediction

            return [
                Prediction(
                    label="positive",
                    probabilities={"negative": 0.0, "neutral": 0.0, "positive": 1.0},
                    unhappy_score=0.0,
                    unhappy=False,
                    category="praise",
                    category_score=1.0,
                    circumstances=(),
                    model_version=self.version,
                )
                for _ in texts
            ]

    app.use_classifier(Flip())  # type: ignore[arg-type]
    with app.sessions() as s:
        ids = list(s.scalars(select(m.Mention.id)))
    assert classify_mentions(app, ids) == 4
    assert stored(app) == truth(app) and facets_agree(app)
    assert set(k[3] for k in stored(app)[0]) == {"positive"}

    # a recount from scratch agrees
    rollups.rebuild(app)
    assert stored(app) == truth(app) and facets_agree(app)
    assert rollups.brands_current(app)


def test_brand_rollups_recounted_when_competitors_change(
    make_app: Callable[..., App], tmp_path: Path
) -> None:
    feed = tmp_path / "posts.jsonl"
    now = datetime.now(UTC)
    write_posts(
        feed,
        [
            post(1, "Zephyr or Nimbus for trail running?", now - timedelta(hours=2)),
            post(2, "Zephyr Shoes are great", now - timedelta(hours=1)),
        ],
    )
    app = make_app({"sources": [{"name": "social", "type": "jsonl", "path": str(feed)}]})
    poll_sources(app)
    assert not rollups.brands_current(app)  # never counted with a signature yet
    assert rollups.ensure_brands(app) is True
    assert brand_counts(app) == Counter({"Zephyr Shoes": 2})
    assert rollups.ensure_brands(app) is False

    app.settings.dashboard.competitors = [  # the operator adds a competitor
        type(app.settings.dashboard)
        .model_validate({"competitors": [{"name": "Nimbus", "terms": ["nimbus"]}]})
        .competitors[0]
    ]
    assert not rollups.brands_current(app)
    assert rollups.ensure_brands(app) is True
    assert brand_counts(app) == Counter({"Zephyr Shoes": 2, "Nimbus": 1})


def _bare(table: Any) -> Any:
    """``table`` without Python-side defaults: only the columns a row names are written
    (a database at an older revision lacks the newer ones)."""
    from sqlalchemy import column
    from sqlalchemy import table as table_clause

    return table_clause(table.name, *(column(c.name, c.type) for c in table.columns))


def test_migration_backfills_rollups_of_existing_mentions(db_url: str) -> None:
    """A database at 0002 with mentions gets rollups that match them when upgraded."""
    from alembic import command

    from listener.db import alembic_config, make_engine, make_sessionmaker

    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine), "0002")
    base = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    with make_sessionmaker(engine).begin() as s:
        from sqlalchemy import insert

        s.execute(
            insert(_bare(m.Source.__table__)),
            [
                {
                    "id": 1,
                    "name": "a",
                    "type": "jsonl",
                    "enabled": True,
                    "cursor": {},
                    "error_count": 0,
                    "items_total": 0,
                    "last_new": 0,
                    "polls_total": 0,
                    "created_at": base,
                    "updated_at": base,
                }
            ],
        )
        s.execute(
            insert(_bare(m.Author.__table__)),
            [
                {
                    "id": 1,
                    "platform": "x",
                    "handle": "h",
                    "verified": False,
                    "first_seen_at": base,
                    "last_seen_at": base,
                }
            ],
        )
        rows = []
        for i in range(50):
            rows.append(
                {
                    "source_id": 1,
                    "external_id": str(i),
                    "author_id": 1,
                    "kind": "post",
                    "text": "Zephyr",
                    "matched_keywords": [],
                    "published_at": base + timedelta(minutes=37 * i),
                    "collected_at": base,
                    "updated_at": base,
                    "content_hash": str(i),
                    "edit_count": 0,
                    "raw": {},
                    "label": [None, "negative", "neutral"][i % 3],
                    "category": [None, "billing"][i % 2],
                }
            )
        s.execute(insert(_bare(m.Mention.__table__)), rows)
    command.upgrade(alembic_config(engine), "head")
    from listener.config import settings_from_dict

    settings = settings_from_dict({"brand": {"name": "Zephyr"}, "database": {"url": db_url}})
    app = App(settings=settings, engine=engine, sessions=make_sessionmaker(engine))
    hourly, daily = stored(app)
    assert (hourly, daily) == truth(app) and facets_agree(app)
    assert sum(hourly.values()) == 50
    engine.dispose()
