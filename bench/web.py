"""Web benchmark: queue and dashboard page times on a realistically large database.

Builds a database with 100k mentions and 10k open cases (plus closed ones) using
SQLAlchemy Core bulk inserts, signs in, and times the pages in-process (FastAPI
TestClient: the whole stack — routing, session, queries, templates — without
network noise).  Prints p50/p95 per page and the ratio of p95 to the 150 ms target.

    .venv/bin/python bench/web.py                       # SQLite (temp file)
    .venv/bin/python bench/web.py --db postgresql+psycopg://postgres@127.0.0.1/test
    .venv/bin/python bench/web.py --mentions 20000 --open-cases 2000 --requests 20
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_MS = 150.0  #: the queue's target
DASHBOARD_TARGET_MS = 100.0  #: the 90-day dashboard's target (issue #18)
LABELS = ("negative", "neutral", "positive")
CATEGORIES = (
    "delivery",
    "damaged_or_defective",
    "billing",
    "returns_and_refunds",
    "rude_or_slow_service",
    "wrong_item_or_size",
    "account_or_login",
    "app_or_website",
    "praise",
    "other",
)
WORDS = [
    "zephyr",
    "shoes",
    "order",
    "package",
    "late",
    "refund",
    "size",
    "wrong",
    "box",
    "arrived",
    "great",
    "love",
    "hate",
    "support",
    "call",
    "wait",
    "week",
    "never",
    "again",
    "return",
    "exchange",
    "broken",
    "sole",
    "heel",
    "lace",
    "nimbus",
]


def build(url: str, mentions: int, open_cases: int, seed: int = 7) -> Any:
    """Create and fill the database; returns the App."""
    from sqlalchemy import insert

    from listener import models as m
    from listener.app import App
    from listener.auth import hash_password
    from listener.config import settings_from_dict

    settings = settings_from_dict(
        {
            "brand": {"name": "Zephyr Shoes"},
            "database": {"url": url},
            "classifier": {"kind": "lexicon"},
            "web": {"secret_key": "bench-secret-key-0123456789abcdef"},
            "dashboard": {"competitors": [{"name": "Nimbus", "terms": ["nimbus"]}]},
        },
        base_dir=ROOT,
        env={},
    )
    app = App.from_settings(settings)
    rnd = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    n_authors = max(100, mentions // 5)
    closed_cases = open_cases // 2
    t0 = time.perf_counter()
    with app.engine.begin() as conn:
        conn.execute(
            insert(m.Source),
            [
                {
                    "id": i + 1,
                    "name": f"source-{i}",
                    "type": "jsonl",
                    "enabled": True,
                    "cursor": {},
                    "error_count": 0,
                    "items_total": 0,
                    "last_new": 0,
                    "polls_total": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(8)
            ],
        )
        conn.execute(
            insert(m.User),
            [
                {
                    "username": "agent",
                    "role": "lead",
                    "password_hash": hash_password("bench password"),
                    "active": True,
                    "created_at": now,
                }
            ],
        )
        authors = [
            {
                "id": i + 1,
                "platform": "x",
                "handle": f"@user{i}",
                "display_name": f"User {i}",
                "followers": int(rnd.paretovariate(1.2) * 50),
                "verified": False,
                "first_seen_at": now,
                "last_seen_at": now,
            }
            for i in range(n_authors)
        ]
        for chunk in _chunks(authors, 5000):
            conn.execute(insert(m.Author), chunk)
        cases = []
        statuses = ["new", "drafted", "claimed", "approved"]
        for i in range(open_cases + closed_cases):
            opened = now - timedelta(minutes=rnd.randint(1, 60 * 24 * 14))
            status = (
                rnd.choice(statuses)
                if i < open_cases
                else rnd.choice(["sent", "resolved", "rejected"])
            )
            cases.append(
                {
                    "id": i + 1,
                    "author_id": rnd.randint(1, n_authors),
                    "source_id": rnd.randint(1, 8),
                    "status": status,
                    "priority": rnd.randint(0, 100),
                    "reasons": ["negative 0.9", rnd.choice(CATEGORIES), "3k followers"],
                    "category": rnd.choice(CATEGORIES),
                    "circumstances": [],
                    "unhappy_score": rnd.random(),
                    "assignee": rnd.choice([None, None, "agent", "bob"])
                    if status == "claimed"
                    else None,
                    "sla_due_at": opened + timedelta(hours=1),
                    "mention_count": 1,
                    "last_mention_at": opened,
                    "created_at": opened,
                    "updated_at": opened,
                }
            )
        for chunk in _chunks(cases, 5000):
            conn.execute(insert(m.Case), chunk)
        n_cases = len(cases)
        rows = []
        for i in range(mentions):
            text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 40)))
            label = rnd.choices(LABELS, (0.35, 0.45, 0.2))[0]
            published = now - timedelta(seconds=rnd.randint(60, 90 * 86400))
            rows.append(
                {
                    "source_id": rnd.randint(1, 8),
                    "external_id": f"m{i}",
                    "author_id": rnd.randint(1, n_authors),
                    "case_id": (i % n_cases) + 1 if i < n_cases * 2 else None,
                    "kind": "post",
                    "text": text,
                    "matched_keywords": ["zephyr"],
                    "published_at": published,
                    "collected_at": published,
                    "updated_at": published,
                    "content_hash": hashlib.sha1(text.encode()).hexdigest(),
                    "edit_count": 0,
                    "raw": {},
                    "label": label,
                    "unhappy": label == "negative",
                    "unhappy_score": rnd.random(),
                    "category": rnd.choice(CATEGORIES),
                    "model_version": "bench",
                }
            )
            if len(rows) == 5000:
                conn.execute(insert(m.Mention), rows)
                rows = []
        if rows:
            conn.execute(insert(m.Mention), rows)
    from sqlalchemy import text as sql

    from listener import rollups

    t1 = time.perf_counter()
    rollups.rebuild(app)  # what ingest keeps current, counted once for the bulk load
    print(f"  counted the rollups in {time.perf_counter() - t1:.1f}s", file=sys.stderr)
    if app.engine.dialect.name == "postgresql":  # as autovacuum would: visibility map + stats
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in (
                "cases",
                "mentions",
                "authors",
                "mention_rollups",
                "mention_rollups_daily",
                "brand_rollups_daily",
            ):
                conn.execute(sql(f"VACUUM ANALYZE {table}"))
    else:
        with app.engine.begin() as conn:
            conn.execute(sql("ANALYZE"))
    print(
        f"  built {mentions} mentions, {n_cases} cases ({open_cases} open), {n_authors} "
        f"authors in {time.perf_counter() - t0:.1f}s",
        file=sys.stderr,
    )
    return app


def _chunks(rows: list[dict[str, Any]], n: int) -> Any:
    for i in range(0, len(rows), n):
        yield rows[i : i + n]


def measure(app: Any, requests: int) -> dict[str, tuple[float, float]]:
    """p50/p95 in ms per page."""
    import re

    from fastapi.testclient import TestClient

    from listener.web import create_app

    client = TestClient(create_app(app))
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post(
        "/login",
        data={"username": "agent", "password": "bench password", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    pages = {
        "queue": "/queue",
        "queue page 20": "/queue?page=20",
        "queue filtered (source+category)": "/queue?source=source-3&category=billing",
        "queue search, common word (q=refund)": "/queue?q=refund",
        "queue search, no match (q=xylophone)": "/queue?q=xylophone",
        "case page": "/cases/42",
        "dashboard (7d)": "/dashboard?window=7d",
        "dashboard (30d)": "/dashboard?window=30d",
        "dashboard (90d)": "/dashboard?window=90d",
        "dashboard (90d, one source)": "/dashboard?window=90d&source=source-3",
        "dashboard (90d, one source and category)": (
            "/dashboard?window=90d&source=source-3&category=billing"
        ),
        "dashboard top terms (90d, not cached)": "/dashboard/terms.json?window=90d&nocache=1",
        "dashboard (90d, top terms inline, not cached)": "/dashboard?window=90d&terms=1&nocache=1",
        "API dashboard (90d)": "/api/v1/dashboard?window=90d",
        "chart CSV export (90d)": "/dashboard/chart/volume.csv?window=90d",
        "drill-down (1 day)": None,
        "API queue": "/api/v1/queue",
    }
    day = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d")
    pages["drill-down (1 day)"] = f"/mentions?window=30d&bucket={quote(day)}&label=negative"
    out = {}
    for name, path in pages.items():
        assert path is not None
        for _ in range(3):  # warm-up
            assert client.get(path).status_code == 200, path
        times = []
        for _ in range(requests):
            if "nocache" in path:  # every request counts its top terms afresh
                client.app.state.cache.clear()  # type: ignore[attr-defined]
            t = time.perf_counter()
            resp = client.get(path)
            times.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        out[name] = (statistics.median(times), p95)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db",
        default="sqlite",
        help="'sqlite' (temp file) or a database URL "
        "(PostgreSQL: a fresh schema is created and dropped)",
    )
    parser.add_argument("--mentions", type=int, default=100_000)
    parser.add_argument("--open-cases", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args(argv)
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    schema = None
    if args.db == "sqlite":
        tmp = tempfile.mkdtemp(prefix="listener-bench-")
        url = f"sqlite:///{tmp}/bench.db"
    else:
        from sqlalchemy import create_engine, text

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(args.db).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.db else "?"
        url = f"{args.db}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        app = build(url, args.mentions, args.open_cases)
        results = measure(app, args.requests)
        backend = app.engine.dialect.name
        app.close()
    finally:
        if schema:
            from sqlalchemy import create_engine, text

            with create_engine(args.db).begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    print(
        f"| page ({backend}, {args.mentions // 1000}k mentions, {args.open_cases // 1000}k "
        "open cases) | p50 ms | p95 ms | p95 / target |"
    )
    print("|---|---:|---:|---:|")
    for name, (p50, p95) in results.items():
        target = DASHBOARD_TARGET_MS if name.startswith("dashboard") else TARGET_MS
        print(f"| {name} | {p50:.1f} | {p95:.1f} | {p95 / target:.2f} of {target:.0f} ms |")
    p95 = results["dashboard (90d)"][1]
    verdict = "met" if p95 < DASHBOARD_TARGET_MS else "NOT met"
    print(f"\n90-day dashboard p95 {p95:.1f} ms: target {DASHBOARD_TARGET_MS:.0f} ms {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
