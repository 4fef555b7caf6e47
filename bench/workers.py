"""Celery workers benchmark: one worker process vs two, on this machine.

Two measurements, each with 1 and then 2 ``listener worker -c 1`` processes
against a fresh PostgreSQL schema and a real broker (Redis by default):

1. **Classification-bound**: ``--mentions`` stored mentions are marked as
   classified by an older model; ``listener.tasks.enqueue_due`` enqueues
   re-classification batches (``--batch`` mentions each) and the clock runs
   until every mention carries the configured classifier's version.  Uses
   the classifier the service is configured with (``classifier.kind``; the
   lexicon classifier today).
2. **End to end**: ``--feeds`` RSS feeds × ``--items`` items served from
   127.0.0.1 (``tests/feedserver.py``); every source is enqueued and the
   clock runs until every source has been stored (fetch, parse, match,
   classify, triage, draft, commit): mentions ingested per second.

Workers are started and warmed (one task each) before the clock starts.
Figures are wall-clock seconds; ratios are against the one-worker run.

Run: ``.venv/bin/python bench/workers.py [--broker redis://…] [--write-docs]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from opsfixtures import (  # noqa: E402
    HAPPY,
    PG_URL,
    REDIS_URL,
    UNHAPPY,
    base_config,
    fresh_pg_schema,
    purge_queue,
    start_listener,
    stop,
    wait_for,
    write_config,
    write_feeds,
)

DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Workers"


def service_classifier() -> dict[str, Any]:
    """The ``classifier:`` block the service is configured with (config.yaml)."""
    import yaml

    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8")) or {}
    block = dict(data.get("classifier") or {})
    from classifiers import ClassifierSettings

    block["kind"] = ClassifierSettings(**block).kind  # the default kind when none is named
    return block


def _load(config: Path) -> Any:
    from listener.app import App
    from listener.config import load_settings

    settings = load_settings(config)
    return settings, App.from_settings(settings)


def _classifier_for(block: dict[str, Any], workers: int) -> dict[str, Any]:
    """The classifier block with its threads split between ``workers`` processes (ONNX
    Runtime runs batches side by side on ``classifier.threads`` threads per process)."""
    return {**block, "threads": max(1, (os.cpu_count() or 1) // workers)}


def _start_workers(n: int, config: Path, logs: Path) -> list[Any]:
    # each configuration uses the whole machine: torch's threads are split between processes
    threads = str(max(1, (os.cpu_count() or 1) // n))
    procs = [
        start_listener(
            ["worker", "-c", "1", "-n", f"bench{i}@%h", "--loglevel", "INFO"],
            config,
            logs / f"worker{i}.log",
            OMP_NUM_THREADS=threads,
        )
        for i in range(n)
    ]
    return procs


def _seed_mentions(app: Any, count: int) -> None:
    from sqlalchemy import insert

    from listener import models as m
    from listener.pipeline import sync_sources

    sync_sources(app)
    texts = UNHAPPY + HAPPY
    with app.sessions() as session, session.begin():
        source = m.Source(
            name="bench-seed", type="jsonl", config_location="-", cursor={}, enabled=False
        )
        author = m.Author(platform="blog", handle="bench-author")
        session.add_all([source, author])
        session.flush()
        rows = []
        from datetime import UTC, datetime, timedelta

        t0 = datetime(2026, 11, 1, tzinfo=UTC)
        for i in range(count):
            rows.append(
                {
                    "source_id": source.id,
                    "external_id": f"seed-{i}",
                    "author_id": author.id,
                    "text": f"{texts[i % len(texts)]} (order {i})",
                    "published_at": t0 + timedelta(seconds=i),
                    "content_hash": f"{i:064d}",
                    "matched_keywords": [],
                    "raw": {},
                    "model_version": "stale-model",
                    "kind": "post",
                    "collected_at": t0,
                    "updated_at": t0,
                    "edit_count": 0,
                }
            )
        session.execute(insert(m.Mention), rows)


def _stale(app: Any, version: str) -> int:
    from sqlalchemy import func, or_, select

    from listener import models as m

    with app.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(m.Mention)
                .where(or_(m.Mention.model_version.is_(None), m.Mention.model_version != version))
            )
            or 0
        )


def classify_run(workers: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from sqlalchemy import update

    from listener import models as m
    from listener.tasks import classify_batch, configure_from, enqueue_due

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    with fresh_pg_schema(PG_URL) as url:
        data = base_config(
            url,
            classifier=_classifier_for(args.classifier, workers),
            workers={
                "broker_url": args.broker,
                "queue": queue,
                "classify_batch": args.batch,
                "concurrency": 1,
            },
        )
        config = write_config(tmp / f"classify{workers}.yaml", data)
        settings, app = _load(config)
        configure_from(settings)
        _seed_mentions(app, args.mentions + 2 * workers)
        version = app.classifier.version
        procs = _start_workers(workers, config, tmp)
        try:
            # warm-up: one tiny batch per worker loads the classifier in each process
            from sqlalchemy import select

            with app.sessions() as session:
                warm = list(
                    session.scalars(
                        select(m.Mention.id).order_by(m.Mention.id.desc()).limit(2 * workers)
                    )
                )
            for i in range(workers):
                classify_batch.apply_async(([warm[2 * i], warm[2 * i + 1]],))
            wait_for(lambda: _stale(app, version) == args.mentions, 300, "warm-up batches")
            runs: list[float] = []
            for _rep in range(args.reps):
                time.sleep(0.5)
                t0 = time.perf_counter()
                ticks: dict[str, Any] = {}

                def beat_tick(ticks: dict[str, Any] = ticks) -> bool:  # `listener beat`, 0.5 s
                    if _stale(app, version) == 0:
                        return True
                    if time.perf_counter() - ticks.get("last", 0.0) >= 0.5:
                        ticks["last"] = time.perf_counter()
                        enqueue_due(app, classify=True, state=ticks)
                    return False

                wait_for(beat_tick, 600, "re-classification", every=0.05)
                runs.append(time.perf_counter() - t0)
                with app.sessions() as session, session.begin():
                    # stale again for the next run, with new texts (the encoder caches texts)
                    session.execute(
                        update(m.Mention)
                        .where(m.Mention.id.not_in(warm))
                        .values(
                            model_version="stale-model", text=m.Mention.text + f" (run {_rep + 2})"
                        )
                    )
            elapsed = statistics.median(runs)
        finally:
            for p in procs:
                stop(p)
            purge_queue(args.broker, queue)
            with app.sessions() as session, session.begin():
                session.execute(update(m.Mention).values(model_version=None))
            app.close()
    return {
        "workers": workers,
        "mentions": args.mentions,
        "seconds": round(elapsed, 3),
        "per_second": round(args.mentions / elapsed, 1),
        "runs": [round(r, 3) for r in runs],
    }


def ingest_run(workers: int, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from feedserver import FeedServer
    from sqlalchemy import func, select

    from listener import models as m
    from listener.tasks import configure_from, poll_source

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    feeds_dir = tmp / "feeds"
    paths = write_feeds(feeds_dir, args.feeds * args.reps + workers, args.items)
    with fresh_pg_schema(PG_URL) as url, FeedServer({"feeds": feeds_dir}) as srv:
        sources = [
            {
                "name": f"blog{n:03d}",
                "type": "feed",
                "url": srv.file_url("feeds", p.name),
                "match_all": True,
                "interval": "1h",
            }
            for n, p in enumerate(paths)
        ]
        data = base_config(
            url,
            sources=sources,
            classifier=_classifier_for(args.classifier, workers),
            workers={"broker_url": args.broker, "queue": queue, "concurrency": 1},
        )
        config = write_config(tmp / f"ingest{workers}.yaml", data)
        settings, app = _load(config)
        configure_from(settings)
        from listener.pipeline import sync_sources

        sync_sources(app)
        procs = _start_workers(workers, config, tmp)
        total = args.feeds * args.reps
        warm = [s["name"] for s in sources[total:]]
        groups = [
            [s["name"] for s in sources[r * args.feeds : (r + 1) * args.feeds]]
            for r in range(args.reps)
        ]

        def done(names: list[str]) -> bool:
            with app.sessions() as session:
                n = session.scalar(
                    select(func.count())
                    .select_from(m.Source)
                    .where(m.Source.name.in_(names), m.Source.last_success_at.is_not(None))
                )
            return n == len(names)

        try:
            for name in warm:  # one poll per worker: imports, classifier, connections
                poll_source.apply_async((name,))
            wait_for(lambda: done(warm), 300, "warm-up polls")
            runs: list[float] = []
            for group in groups:  # a fresh set of feeds each run
                time.sleep(0.5)
                t0 = time.perf_counter()
                for name in group:  # what `listener beat` enqueues for due sources
                    poll_source.apply_async((name,))
                wait_for(lambda group=group: done(group), 600, "every feed ingested", every=0.05)
                runs.append(time.perf_counter() - t0)
            elapsed = statistics.median(runs)
            with app.sessions() as session:
                stored = session.scalar(
                    select(func.count())
                    .select_from(m.Mention)
                    .join(m.Source)
                    .where(m.Source.name.in_(groups[0]))
                )
        finally:
            for p in procs:
                stop(p)
            purge_queue(args.broker, queue)
            app.close()
    return {
        "workers": workers,
        "feeds": args.feeds,
        "mentions": int(stored or 0),
        "seconds": round(elapsed, 3),
        "per_second": round((stored or 0) / elapsed, 1),
        "runs": [round(r, 3) for r in runs],
    }


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return float("nan")


def _rows(kind: str, r: dict[str, Any]) -> list[str]:
    c1, c2 = r["classify"]
    i1, i2 = r["ingest"]
    return [
        f"| `{kind}`: re-classify {c1['mentions']} mentions (batches of {r['batch']}), seconds | "
        f"{c1['seconds']:.2f} | {c2['seconds']:.2f} | "
        f"{c1['seconds'] / c2['seconds']:.2f}× speed-up |",
        f"| `{kind}`: classification throughput, mentions/s | {c1['per_second']:.0f} | "
        f"{c2['per_second']:.0f} | {c2['per_second'] / c1['per_second']:.2f}× |",
        f"| `{kind}`: end to end, {i1['feeds']} feeds × {r['items']} items polled, classified, "
        f"triaged, drafted, stored: seconds | {i1['seconds']:.2f} | {i2['seconds']:.2f} | "
        f"{i1['seconds'] / i2['seconds']:.2f}× speed-up |",
        f"| `{kind}`: mentions ingested/s end to end ({i1['mentions']} mentions) | "
        f"{i1['per_second']:.0f} | {i2['per_second']:.0f} | "
        f"{i2['per_second'] / i1['per_second']:.2f}× |",
    ]


def markdown(results: dict[str, Any]) -> str:
    kinds = results["kinds"]
    lines = [
        HEADING,
        "",
        f"`bench/workers.py`: one vs two `listener worker -c 1` processes (Celery, prefork) "
        f"against a fresh PostgreSQL schema, broker `{results['broker']}`; classifier "
        f"`{results['configured']}` (as config.yaml configures the service)"
        + (
            ", and the lexicon classifier for comparison"
            if "lexicon" in kinds and results["configured"] != "lexicon"
            else ""
        )
        + ". Workers are started and warmed (one task each: imports, model load, connections) "
        "before the clock starts; each worker gets `OMP_NUM_THREADS` and `classifier.threads` = "
        "cores / workers, so "
        f"both configurations use the whole machine. {os.cpu_count()}-core dev box "
        f"(load average {results['load_before']:.1f} before, "
        f"{results['load_after']:.1f} after); each figure is the median of {results['reps']} "
        "timed runs with the same warm workers.",
        "",
        "| measurement | 1 worker | 2 workers | 2 vs 1 |",
        "|---|---|---|---|",
    ]
    for kind, r in kinds.items():
        lines += _rows(kind, r)
    raw = "; ".join(
        f"{kind} {what} {r[what][0]['runs']} / {r[what][1]['runs']}"
        for kind, r in kinds.items()
        for what in ("classify", "ingest")
    )
    lines += [
        "",
        f"Raw runs in seconds (1 worker / 2 workers): {raw}.",
        "",
        "* Why not 2×: on one 2-core machine, one worker already uses both cores (ONNX "
        "Runtime batches run side by side on `classifier.threads` threads), and both "
        "configurations share the cores with PostgreSQL, Redis, the feed server and this "
        "script; single runs vary by up to ±30 % (raw runs above).  So these ratios measure "
        "the cost of a second process, not scale-out: a worker on a second machine brings "
        "its own cores.",
        "* Workers share nothing while classifying, so classification scales with machines. "
        "End to end, each poll also spends much of its time in PostgreSQL (one transaction "
        "per source; author, triage and draft queries per mention), which all workers share.",
        "* Workers coordinate only through the database and the queue, and every task claims "
        "its rows (`FOR UPDATE SKIP LOCKED`), so more machines add throughput until "
        "PostgreSQL is the bottleneck.",
        "",
        "Reproduce: `.venv/bin/python bench/workers.py --write-docs` (needs PostgreSQL and "
        "Redis or RabbitMQ: `--broker amqp://guest:guest@127.0.0.1:5672//`).",
        "",
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    if HEADING in text:
        start = text.index(HEADING)
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + ("\n" + text[nxt + 1 :] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default=REDIS_URL)
    parser.add_argument(
        "--mentions",
        type=int,
        default=None,
        help="default: 20000 (lexicon) or 1500 (transformer classifiers)",
    )
    parser.add_argument(
        "--batch", type=int, default=None, help="mentions per task; default 250 (lexicon) or 64"
    )
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--reps", type=int, default=3, help="timed runs per configuration")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument(
        "--kinds",
        default=None,
        help="classifier kinds to measure, comma-separated (default: the "
        "configured one, plus lexicon)",
    )
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--keep-logs", default=None, help="folder for configs and worker logs")
    args = parser.parse_args()
    configured = service_classifier()
    kinds = (
        args.kinds.split(",")
        if args.kinds
        else list(dict.fromkeys([configured["kind"], "lexicon"]))
    )
    from listener.logs import configure

    configure("WARNING")
    results: dict[str, Any] = {
        "broker": args.broker.split("://")[0],
        "configured": configured["kind"],
        "kinds": {},
        "reps": args.reps,
        "load_before": load_average(),
    }
    with tempfile.TemporaryDirectory(prefix="listener-bench-") as d:
        base = Path(args.keep_logs) if args.keep_logs else Path(d)
        for kind in kinds:
            run = argparse.Namespace(**vars(args))
            run.classifier = {**configured, "kind": kind}
            fast = kind == "lexicon"
            run.mentions = args.mentions or (20000 if fast else 1500)
            run.batch = args.batch or (250 if fast else 64)
            tmp = base / kind
            tmp.mkdir(parents=True, exist_ok=True)
            r: dict[str, Any] = {"batch": run.batch, "items": run.items}
            r["classify"] = [classify_run(n, run, tmp) for n in (1, 2)]
            print(kind, json.dumps(r["classify"]), flush=True)
            r["ingest"] = [ingest_run(n, run, tmp / f"i{n}") for n in (1, 2)]
            print(kind, json.dumps(r["ingest"]), flush=True)
            results["kinds"][kind] = r
    results["load_after"] = load_average()
    if args.keep_logs:
        (Path(args.keep_logs) / "results.json").write_text(json.dumps(results, indent=1))
    section = markdown(results)
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
