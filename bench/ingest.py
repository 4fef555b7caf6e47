"""Ingest benchmark: real-text posts through ``poll_sources``, bulk path vs per-post path.

Posts are the airline dev set's texts (``../shared/data/airline-dev``) repeated
with new ids, written to a JSONL source in a temporary folder (``match_all``:
every line is a mention).  Each measurement runs in its own process (fresh
database, fresh interpreter) and reports:

- seconds for ``poll_sources`` (collect → clean → classify → store → triage →
  draft → commit), the model already loaded;
- mentions stored per second;
- the process's peak resident memory (``ru_maxrss``; includes the model).

Both storage paths run in the same invocation, so the ratios compare like with
like on a busy machine: ``polling.store_in_bulk: true`` (the set-based path)
against ``false`` (the per-post path).  Classifiers: ``lexicon`` (storage is
almost all the time) and the default model (end to end).  Databases: SQLite
(a file in the temporary folder) and PostgreSQL (a fresh schema, dropped after).

Run: ``.venv/bin/python bench/ingest.py [--posts 5000] [--large 100000]
[--pg URL] [--skip-default] [--write-docs]``.  ``--large`` runs the bulk path
only, as a backfill in chunks (``listener backfill``), for throughput and memory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "airline-dev" / "Tweets-dev.csv"
DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Ingest"
PG_URL = os.environ.get(
    "LISTENER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def write_posts(path: Path, count: int) -> None:
    """``count`` posts: the dev set's texts and authors cycled, each with a new id."""
    with DATA.open(encoding="utf-8", newline="") as fh:
        rows = [(r["text"], r["name"] or "someone") for r in csv.DictReader(fh) if r["text"]]
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            text, name = rows[i % len(rows)]
            rep = i // len(rows)
            out.write(
                json.dumps(
                    {
                        "id": f"b{i}",
                        "text": text,
                        "author": {"handle": f"{name}{rep}" if rep else name},
                        "created_at": (t0 + timedelta(seconds=i)).isoformat(),
                    }
                )
                + "\n"
            )


def _config(tmp: Path, db_url: str, jsonl: Path, classifier: str, bulk: bool) -> Path:
    import yaml

    block: dict[str, Any] = {"kind": "lexicon"} if classifier == "lexicon" else {}
    config = {
        "brand": {"name": "United", "keywords": ["flight"]},
        "database": {"url": db_url},
        "sources": [{"name": "bench", "type": "jsonl", "path": str(jsonl), "match_all": True}],
        "classifier": block,
        "recovery": {"templates_dir": str(ROOT / "templates")},
        "polling": {"store_in_bulk": bulk},
        "logging": {"level": "WARNING"},
    }
    path = tmp / f"config-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def measure_one(config: Path, backfill: bool, profile: Path | None) -> dict[str, Any]:
    """In this process: init the database, load the model, poll once (or backfill), report."""
    from sqlalchemy import func, select

    from listener import models as m
    from listener.app import App
    from listener.config import load_settings
    from listener.db import migrate
    from listener.logs import configure

    settings = load_settings(config, env={})
    configure(settings.logging.level)
    app = App.from_settings(settings)
    migrate(app.engine)
    app.classifier.predict(["warm up the model"])
    t0 = time.perf_counter()
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    stages: dict[str, float] = {}

    def add(outcome: Any) -> None:
        for k, v in outcome.stage_ms.items():
            stages[k] = stages.get(k, 0.0) + v

    if backfill:
        from listener.backfill import backfill as run_backfill

        run_backfill(app, "bench", on_chunk=lambda _p, o: add(o))
    else:
        from listener.pipeline import poll_sources

        poll_sources(app, on_result=add)
    seconds = time.perf_counter() - t0
    if profile is not None:
        prof.disable()
        prof.dump_stats(str(profile))
    with app.sessions() as s:
        stored = int(s.scalar(select(func.count()).select_from(m.Mention)) or 0)
        cases = int(s.scalar(select(func.count()).select_from(m.Case)) or 0)
        drafts = int(s.scalar(select(func.count()).select_from(m.Draft)) or 0)
    app.close()
    return {
        "seconds": round(seconds, 3),
        "mentions": stored,
        "cases": cases,
        "drafts": drafts,
        "per_second": round(stored / seconds, 1) if seconds else 0.0,
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "stages_s": {k: round(v / 1000, 3) for k, v in stages.items()},
    }


def _pg_schema(base: str) -> tuple[str, str]:
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    sep = "&" if "?" in base else "?"
    return schema, f"{base}{sep}options={quote(f'-csearch_path={schema}')}"


def _drop_schema(base: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def run_case(
    tmp: Path, db: str, pg: str, jsonl: Path, classifier: str, bulk: bool, backfill: bool = False
) -> dict[str, Any]:
    schema = None
    if db == "sqlite":
        url = f"sqlite:///{tmp / ('db-' + uuid.uuid4().hex[:8] + '.sqlite')}"
    else:
        schema, url = _pg_schema(pg)
    config = _config(tmp, url, jsonl, classifier, bulk)
    try:
        cmd = [sys.executable, __file__, "--one", str(config)]
        if backfill:
            cmd.append("--backfill")
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=3600, cwd=tmp, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"measurement failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if schema is not None:
            _drop_schema(pg, schema)
    result.update(db=db, classifier=classifier, path="bulk" if bulk else "per-post")
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--posts", type=int, default=5000)
    ap.add_argument("--large", type=int, default=100_000, help="0: skip the large run")
    ap.add_argument("--pg", default=PG_URL, help="PostgreSQL URL ('' to skip)")
    ap.add_argument("--skip-default", action="store_true", help="lexicon classifier only")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--one", metavar="CONFIG", help=argparse.SUPPRESS)
    ap.add_argument("--backfill", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--profile", metavar="FILE", help="with --one: write cProfile stats")
    args = ap.parse_args()
    if args.one:
        profile = Path(args.profile) if args.profile else None
        print(json.dumps(measure_one(Path(args.one), args.backfill, profile)))
        return

    dbs = ["sqlite"] + (["postgresql"] if args.pg else [])
    classifiers = ["lexicon"] + ([] if args.skip_default else ["default"])
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="listener-bench-ingest-") as d:
        tmp = Path(d)
        small = tmp / "posts-small.jsonl"
        write_posts(small, args.posts)
        for db in dbs:
            for clf in classifiers:
                for bulk in (False, True):
                    rows.append(run_case(tmp, db, args.pg, small, clf, bulk))
        if args.large:
            large = tmp / "posts-large.jsonl"
            write_posts(large, args.large)
            for db in dbs:
                rows.append(run_case(tmp, db, args.pg, large, "lexicon", True, backfill=True))
    (Path(tempfile.gettempdir()) / "listener-bench-ingest.json").write_text(json.dumps(rows))
    table = render(rows, args.posts, args.large)
    print(table)
    if args.write_docs:
        write_docs(table)


def render(rows: list[dict[str, Any]], posts: int, large: int) -> str:
    lines = [
        f"{posts:,} real-text posts (airline dev set texts, new ids) in one JSONL source "
        "through `poll_sources`; the per-post path and the set-based path in the same run; "
        f"{large:,} posts as a `listener backfill` in 1 MiB chunks (set-based path). "
        "*mentions/s* is end to end (collect, clean, classify, store, triage, draft, commit); "
        "*stored/s* counts the storing stage without the drafting pass (authors, mentions, "
        "classifications, triage, cases, events, rollups); *drafts s* is the drafting pass "
        "(each case drafted once per batch, or per part); *follow-ups s* is the part of "
        "triage spent deciding customers' follow-ups; *ratio* is against the per-post "
        "path's figure in the same run. On the set-based path a batch over "
        "`polling.classify_part` (1,000) posts is classified in parts on a thread while the "
        "main thread stores: *classify s* is that thread's time, overlapping *store s* (the "
        "main thread's, waits included); the lexicon, which holds the GIL, classifies its "
        "parts before storing instead (not overlapping). Peak memory is the process's "
        "maximum RSS, the model included.",
        "",
        "| database | classifier | posts | path | seconds | mentions/s | ratio | classify s | "
        "store s | drafts s | follow-ups s | stored/s | ratio | cases | peak MB |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    # the per-post path writes its drafts inside triage: its drafting time is taken to be
    # the set-based run's (the same function for the same cases), marked ≈
    drafts_of = {
        (r["db"], r["classifier"], r["mentions"]): r.get("stages_s", {}).get("drafts")
        for r in rows
        if r["path"] == "bulk"
    }
    base: dict[tuple[str, str, int], tuple[float, float]] = {}
    for r in rows:
        st = r.get("stages_s", {})
        key = (r["db"], r["classifier"], r["mentions"])
        store = st.get("store", 0.0)
        drafts = st.get("drafts")
        approx = drafts is None
        if approx:
            drafts = drafts_of.get(key)
        stored = r["mentions"] / (store - drafts) if drafts is not None and store > drafts else 0
        if r["path"] == "per-post":
            base[key] = (r["per_second"], stored)
        b = base.get(key)
        ratio = f"{r['per_second'] / b[0]:.1f}×" if b and b[0] else "—"
        ratio_stored = f"{stored / b[1]:.1f}×" if b and b[1] else "—"
        follow = f"{st['followups']:.1f}" if "followups" in st else "—"
        lines.append(
            f"| {r['db']} | {r['classifier']} | {r['mentions']:,} | {r['path']} | "
            f"{r['seconds']:.1f} | {r['per_second']:,.0f} | {ratio} | "
            f"{st.get('classify', 0.0):.1f} | {store:.1f} | "
            f"{'≈' if approx else ''}{drafts or 0:.1f} | {follow} | "
            f"{'≈' if approx else ''}{stored:,.0f} | "
            f"{ratio_stored} | {r['cases']:,} | {r['peak_mb']:.0f} |"
        )
    return "\n".join(lines)


def write_docs(table: str) -> None:
    text = DOCS.read_text(encoding="utf-8")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    section = (
        f"{HEADING}\n\nMeasured {stamp} with `bench/ingest.py` on this machine "
        f"({os.cpu_count()} cores, shared).\n\n{table}\n"
    )
    if HEADING in text:
        head, _, rest = text.partition(HEADING)
        nxt = rest.find("\n## ")
        text = head + section + (rest[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
