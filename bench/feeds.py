"""Feed polling benchmark: 200 feeds × 50 entries behind 100 ms of latency, new path vs old.

Synthetic but realistic RSS 2.0 feeds (HTML content with paragraphs, links,
images and tracking pixels; ~10 % of entries mention the brand) are written
to a temporary folder and served by ``tests/feedserver.py`` threading
servers in a *separate process* (so serving does not compete for this
process's GIL), spread over 50 loopback hosts (127.0.0.2 …) with 4 feeds each
so the per-host bound behaves as it would on the internet.  Every response
is delayed by ``--latency``.

Measured, in this process, driving :class:`FeedCollector` the way the
pipeline does (a ``ThreadPoolExecutor`` bounded by ``max_concurrency``;
feeds parsed by the parse-process pool, ``polling.parse_workers``), with the
fast parser (the new path, ``polling.fast_parse: true``) and with feedparser
for every feed (the old path), in the same run:

1. full concurrent polls of every feed, new path, old path and new path with
   every parse in this process (``parse_workers: 0``), interleaved, repeated;
2. the CPU seconds to parse, then to match, all feeds without the network;
3. the 34 real feeds of ``../shared/data/feeds/real`` through ``decode`` on
   both paths: the same posts, problems and stats;
4. one feed alone, the one-by-one poll (unless ``--quick``), and a second,
   unchanged poll with the stored ETags: all 304, nothing parsed;
5. the same polls through ``listener.pipeline.poll_sources`` (storage and the
   lexicon classifier included), unless ``--no-pipeline``.

Issue #19's floors: a full poll in ≤ 1.5 s with ≤ 2 CPU-s of parsing.

Run: ``.venv/bin/python bench/feeds.py [--feeds 200 --entries 50 --latency 0.1] [--write-docs]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from feedserver import FeedServer, feed_settings, feed_source  # noqa: E402

from listener.collectors import parsing  # noqa: E402
from listener.collectors.base import CollectContext, CollectResult, PollState  # noqa: E402
from listener.collectors.feed import (  # noqa: E402
    FeedCollector,
    decode,
    entries_to_posts,
    parse_document,
)

BRAND = {"name": "Acme", "keywords": ["Acme Shoes"], "exclusions": ["Acme Corporation"]}
#: The brand the real feeds are compared with (tests/test_feed_real.py's).
REAL_BRAND = {"name": "Apple", "keywords": ["iPhone", "iPad", "MacBook"]}
REAL_FEEDS = ROOT.parent / "shared" / "data" / "feeds" / "real"
#: Issue #19's floors for this benchmark.
POLL_TARGET = 1.5  # seconds, full concurrent poll
PARSE_CPU_TARGET = 2.0  # CPU seconds, parsing (and matching) all feeds
FEEDS_PER_HOST = 4
#: The synthetic feeds' "now" (entries go back from here, 6 hours apart).
NOW = datetime(2026, 3, 1, tzinfo=UTC)
_VOCABULARY = (
    "the a trail run review week morning shoes pair comfort sole fit heel grip store order "
    "delivery support refund size color mile pace weather road forest city training race "
    "coffee friend family weekend plan photo video update notes thoughts price quality return "
    "service email answer wait box laces cushion blister knee recovery stretch marathon"
)
WORDS = _VOCABULARY.split()
MENTIONS = [
    "My new Acme Shoes started to fall apart after two weeks, and support has not answered.",
    "Ordered from Acme again; the delivery was late but the fit is great.",
    "Acme Shoes customer service refunded me within a day, which was a nice surprise.",
]


# ---------------------------------------------------------------------------
# synthetic feeds


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(8, 18))
    return " ".join(words).capitalize() + rng.choice([".", ".", ".", "!", "?"])


def _entry_html(rng: random.Random, mention: bool, host: str, n: int) -> str:
    paragraphs = [" ".join(_sentence(rng) for _ in range(rng.randint(2, 5))) for _ in range(5)]
    if mention:
        paragraphs.insert(rng.randint(1, 4), rng.choice(MENTIONS))
    parts = [f"<p>{p}</p>" for p in paragraphs]
    parts.insert(2, f'<p><img src="https://{host}/img/{n}.jpg" alt="photo"></p>')
    parts.insert(4, f'<blockquote><a href="https://{host}/p/{n - 1}">earlier post</a></blockquote>')
    parts.append(f'<img src="https://pixel.example/t.gif?p={n}" width="1" height="1">')
    parts.append("<script>window.stats && stats.track();</script>")
    return "\n".join(parts)


def synthetic_feed(index: int, entries: int, rng: random.Random) -> bytes:
    """One blog's RSS 2.0 document with ``entries`` items (~2.5 KB of HTML each)."""
    host = f"blog{index}.example"
    now = NOW
    items = []
    for n in range(entries):
        published = now - timedelta(hours=6 * n + index)
        html = _entry_html(rng, rng.random() < 0.1, host, n)
        items.append(
            "<item>"
            f"<title>{escape(_sentence(rng)[:70])}</title>"
            f"<link>https://{host}/p/{n}</link>"
            f'<guid isPermaLink="false">{host}-{n}</guid>'
            f"<pubDate>{format_datetime(published)}</pubDate>"
            f"<dc:creator>Author {index}</dc:creator>"
            f"<category>running</category><category>{rng.choice(WORDS)}</category>"
            f"<description><![CDATA[{html}]]></description>"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>Blog {index}</title><link>https://{host}/</link>"
        f"<description>Running and gear</description>{''.join(items)}</channel></rss>"
    ).encode()


def write_feeds(folder: Path, feeds: int, entries: int) -> list[str]:
    rng = random.Random(42)
    names = []
    for i in range(feeds):
        name = f"feed{i:03d}.xml"
        (folder / name).write_bytes(synthetic_feed(i, entries, rng))
        names.append(name)
    return names


# ---------------------------------------------------------------------------
# servers (child process)


def serve(folder: str, hosts: list[str], latency: float, ready: Any, stop: Any) -> None:
    """Run one latency-adding FeedServer per host until ``stop`` is set."""
    servers = [FeedServer({"f": Path(folder)}, latency=latency, host=h) for h in hosts]
    for s in servers:
        s.start()
    ready.put([(s.host, s.port) for s in servers])
    stop.wait()
    for s in servers:
        s.stop()


# ---------------------------------------------------------------------------
# measuring


@dataclass
class Poll:
    seconds: float
    results: list[CollectResult]
    process_cpu: float = 0.0  #: CPU seconds this process used (all threads)
    workers_cpu: float = 0.0  #: CPU seconds the parse processes used

    @property
    def parsed(self) -> int:
        return sum(1 for r in self.results if r.stats.get("parsed"))

    @property
    def cpu(self) -> float:
        """Seconds spent parsing and deciding (feedparser + text + matching)."""
        return sum(r.stats.get("parse_s", 0) + r.stats.get("decide_s", 0) for r in self.results)

    @property
    def median_fetch(self) -> float:
        """Median seconds of one request (connection reused), i.e. a feed's latency."""
        return statistics.median(r.stats.get("fetch_s", 0) for r in self.results)

    @property
    def posts(self) -> int:
        return sum(len(r.posts) for r in self.results)


def workers_cpu() -> float:
    """CPU seconds used so far by the live parse processes (from /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in parsing.worker_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def poll(urls: list[str], states: list[PollState], settings: Any, workers: int) -> Poll:
    """Collect every URL with ``workers`` threads (one fresh run context, like the pipeline)."""
    collector = FeedCollector()
    ctx = CollectContext(settings)
    sources = [feed_source(u, name=f"feed{i}") for i, u in enumerate(urls)]
    wcpu = workers_cpu()  # read /proc before the clock starts
    started, cpu = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda s, st: collector.collect(s, st, ctx), sources, states))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    wcpu = workers_cpu() - wcpu
    for close in ctx.shared.get("closers", []):
        close()
    return Poll(seconds, results, cpu, wcpu)


def through_pipeline(urls: list[str], folder: Path, concurrency: int) -> dict[str, float] | None:
    """Two polls via ``listener.pipeline.poll_sources`` (SQLite, lexicon classifier)."""
    try:
        from listener.app import App
        from listener.config import settings_from_dict
        from listener.logs import configure
        from listener.pipeline import poll_sources
    except ImportError:
        return None
    configure("WARNING")
    settings = settings_from_dict(
        {
            "brand": BRAND,
            "database": {"url": f"sqlite:///{folder / 'bench.db'}"},
            "classifier": {"kind": "lexicon"},
            "polling": {"max_concurrency": concurrency, "timeout": "30s"},
            "sources": [{"name": f"feed{i}", "type": "feed", "url": u} for i, u in enumerate(urls)],
        },
        env={},
    )
    app = App.from_settings(settings)
    try:
        timings: dict[str, float] = {}
        for label in ("first", "unchanged"):
            started = time.perf_counter()
            outcomes = poll_sources(app)
            timings[label] = time.perf_counter() - started
            timings[f"{label}_errors"] = sum(1 for o in outcomes if o.status == "error")
        return timings
    finally:
        app.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from listener.logs import configure

    configure("WARNING")  # as `listener run` does: no debug lines in the timed polls
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = write_feeds(folder, args.feeds, args.entries)
        hosts = [
            f"127.0.0.{2 + i}" for i in range((args.feeds + FEEDS_PER_HOST - 1) // FEEDS_PER_HOST)
        ]
        mp = multiprocessing.get_context("spawn")
        ready, stop = mp.Queue(), mp.Event()
        child = mp.Process(target=serve, args=(str(folder), hosts, args.latency, ready, stop))
        child.start()
        try:
            addresses = ready.get(timeout=60)
            urls = [
                f"http://{addresses[i // FEEDS_PER_HOST][0]}:{addresses[i // FEEDS_PER_HOST][1]}"
                f"/files/f/{name}"
                for i, name in enumerate(names)
            ]
            return run_polls(args, urls, folder)
        finally:
            stop.set()
            child.join(10)


def offline_parse(folder: Path, settings: Any, fast: bool) -> tuple[float, float]:
    """CPU seconds to parse, then to match, every feed file once, no network.

    CPU rather than wall time, so other work on the machine inflates it less.
    """
    url = "http://bench.example/feed"
    source = feed_source(url)
    headers = {"content-type": "application/xml", "content-location": url}
    bodies = [path.read_bytes() for path in sorted(folder.glob("feed*.xml"))]
    started = time.process_time()
    parsed = [parse_document(body, headers, fast=fast) for body in bodies]
    parse = time.process_time() - started
    assert all(p["parser"] == ("fast" if fast else "feedparser") for p in parsed)
    started = time.process_time()
    for one in parsed:
        entries_to_posts(one, source, settings.brand, NOW)
    return parse, time.process_time() - started


def real_feeds_equal(real: Path) -> dict[str, Any]:
    """The real feeds through ``decode`` on both paths: posts, problems and stats compared."""
    brand = feed_settings(brand=REAL_BRAND).brand
    files = sorted(p for p in real.rglob("*") if p.is_file())
    out = {"feeds": len(files), "fast": 0, "equal": 0, "entries": 0, "posts": 0, "different": []}
    for path in files:
        url = f"http://feeds.example/{path.name}"
        headers = {"content-type": "application/xml", "content-location": url}
        args = (path.read_bytes(), headers, feed_source(url, match_all=True), brand, NOW)
        new, old = decode(*args, True), decode(*args, False)
        out["fast"] += new[2]["parser"] == "fast"
        same_stats = all(new[2][k] == old[2][k] for k in ("entries", "posts", "version"))
        if new[:2] == old[:2] and same_stats:
            out["equal"] += 1
        else:
            out["different"].append(path.name)
        out["entries"] += old[2]["entries"]
        out["posts"] += len(new[0])
    return out


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_polls(args: argparse.Namespace, urls: list[str], folder: Path) -> dict[str, Any]:
    polling = {"max_concurrency": args.concurrency, "timeout": "30s"}
    paths = {
        "new": feed_settings(brand=BRAND, polling=polling),
        "old": feed_settings(brand=BRAND, polling={**polling, "fast_parse": False}),
        "here": feed_settings(brand=BRAND, polling={**polling, "parse_workers": 0}),
    }
    new = paths["new"]
    fresh = [PollState() for _ in urls]
    parsing.shutdown()
    cold = poll(urls[:4], fresh[:4], new, 4)  # starts the parse pool (+ imports, caches)
    warm = poll(urls[:4], fresh[:4], new, 4)
    singles = [poll([u], [PollState()], new, 1) for u in urls[:5]]
    sequential = None if args.quick else poll(urls, fresh, new, 1)
    runs: dict[str, list[Poll]] = {key: [] for key in paths}
    for _ in range(args.repeat):  # interleaved, so load from other work hits every path alike
        for key, settings in paths.items():
            runs[key].append(poll(urls, fresh, settings, args.concurrency))
    same_posts = all(
        [r.posts for r in run.results] == [r.posts for r in runs["new"][0].results]
        for key in ("old", "here")
        for run in runs[key]
    )
    states = [r.state for r in runs["new"][0].results]
    unchanged = [poll(urls, states, new, args.concurrency) for _ in range(args.repeat)]
    offline: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for _ in range(args.repeat):
        for fast in (True, False):
            offline[fast].append(offline_parse(folder, new, fast))
    fewer = [] if args.quick else [poll(urls, fresh, new, args.compare) for _ in range(args.repeat)]
    first = runs["new"][0]
    out: dict[str, Any] = {
        "feeds": len(urls),
        "entries": args.entries,
        "latency": args.latency,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "load": os.getloadavg()[0],
        "feed_kb": sum(r.stats.get("bytes", 0) for r in first.results) / len(urls) / 1024,
        "single": statistics.median(p.seconds for p in singles),
        "fetch": statistics.median(p.median_fetch for p in singles),
        "sequential": sequential.seconds if sequential else None,
        "parse_workers": parsing.worker_count(new.polling.parse_workers),
        "pool_start": max(cold.seconds - warm.seconds, 0.0),
        "posts": first.posts,
        "same_posts": same_posts,
        "parsers": sorted({str(r.stats.get("parser")) for r in first.results}),
        "unchanged": statistics.median(p.seconds for p in unchanged),
        "unchanged_parsed": max(p.parsed for p in unchanged),
        "unchanged_304": min(sum(1 for r in p.results if r.not_modified) for p in unchanged),
        "compare": args.compare,
        "compare_seconds": statistics.median(p.seconds for p in fewer) if fewer else None,
        "real": real_feeds_equal(args.real) if args.real.is_dir() else None,
        "pipeline": None if args.no_pipeline else through_pipeline(urls, folder, args.concurrency),
    }
    for key, polls in runs.items():
        out[key] = spread([p.seconds for p in polls])
        out[key]["runs"] = [round(p.seconds, 2) for p in polls]
        out[f"{key}_cpu"] = statistics.median(p.process_cpu for p in polls)
        out[f"{key}_workers_cpu"] = statistics.median(p.workers_cpu for p in polls)
    for fast, key in ((True, "new"), (False, "old")):
        out[f"{key}_parse"] = spread([parse for parse, _ in offline[fast]])
        out[f"{key}_decide"] = spread([decide for _, decide in offline[fast]])
        out[f"{key}_parse_total"] = spread([parse + decide for parse, decide in offline[fast]])
    return out


def _s(d: dict[str, float], digits: int = 2) -> str:
    """median (min–max)"""
    return f"{d['median']:.{digits}f} ({d['min']:.{digits}f}–{d['max']:.{digits}f})"


def report(r: dict[str, Any]) -> str:
    """The "## Feed polling" section of docs/benchmarks.md."""
    new, old, here = r["new"], r["old"], r["here"]
    total_new, total_old = r["new_parse_total"], r["old_parse_total"]
    poll_ok = "met" if new["median"] <= POLL_TARGET else "not met"
    poll_cpu = r["new_cpu"] + r["new_workers_cpu"]
    cpu_ok = "met" if total_new["median"] <= PARSE_CPU_TARGET else "not met"
    lines = [
        "## Feed polling",
        "",
        f"`bench/feeds.py`: {r['feeds']} synthetic RSS feeds × {r['entries']} entries "
        f"(~{r['feed_kb']:.0f} KB each, ~10 % of entries mention the brand), served by "
        f"threading HTTP servers in a separate process on {r['feeds'] // FEEDS_PER_HOST} "
        f"loopback hosts, {r['latency'] * 1000:.0f} ms added to every response. "
        f"FeedCollector driven by a ThreadPoolExecutor of `max_concurrency` = "
        f"{r['concurrency']} threads (per_host = 4), as the pipeline does; feeds parsed by "
        f"{r['parse_workers']} parse processes (`polling.parse_workers`, default: one per "
        "core). **New path**: the fast parser (`listener.collectors.fastfeed`, "
        "`polling.fast_parse: true`, the default); **old path**: feedparser for every feed "
        "(`polling.fast_parse: false`), in the same run, the full polls of both paths "
        "interleaved so that other work on the machine weighs on both alike. Wall-clock and "
        f"CPU seconds on the shared 2-core dev box (load average {r['load']:.1f} at the end "
        f"of the run): median (min–max) of {r['repeat']} runs.",
        "",
        "| measurement | new path | old path (feedparser) | old / new |",
        "|---|---|---|---|",
        f"| **full poll, concurrent, seconds** | **{_s(new)}** | {_s(old)} | "
        f"{old['median'] / new['median']:.1f}× |",
        f"| CPU of that poll: fetching process + parse processes | "
        f"{r['new_cpu']:.2f} + {r['new_workers_cpu']:.2f} | "
        f"{r['old_cpu']:.2f} + {r['old_workers_cpu']:.2f} | "
        f"{(r['old_cpu'] + r['old_workers_cpu']) / (r['new_cpu'] + r['new_workers_cpu']):.1f}× |",
        f"| **parse + match, all {r['feeds']} feeds, no network (CPU-s)** | **{_s(total_new)}** "
        f"| {_s(total_old)} | {total_old['median'] / total_new['median']:.1f}× |",
        f"| of which parsing | {_s(r['new_parse'])} | {_s(r['old_parse'])} | "
        f"{r['old_parse']['median'] / r['new_parse']['median']:.1f}× |",
        f"| of which matching (the same code on both) | {_s(r['new_decide'])} | "
        f"{_s(r['old_decide'])} | — |",
        f"| full poll with every parse in the polling process (`parse_workers: 0`) | "
        f"{_s(here)} | — | — |",
        "",
        f"* **Full poll: {new['median']:.2f} s median, {new['min']:.2f} s best, against a "
        f"target of ≤ {POLL_TARGET} s: {poll_ok}**; the old path took {old['median']:.2f} s in "
        f"the same run ({old['median'] / new['median']:.1f}× slower). Runs: new "
        f"{new['runs']}, old {old['runs']}. The poll needs {poll_cpu:.2f} CPU-s (fetching "
        f"{r['new_cpu']:.2f} + parse processes {r['new_workers_cpu']:.2f}): at least "
        f"{poll_cpu / 2:.2f} s on 2 free cores, plus the first {r['latency'] * 1000:.0f} ms "
        f"of latency; the load average of {r['load']:.1f} means about "
        f"{max(r['load'] / 2, 1):.0f} runnable processes per core shared them during the run.",
        f"* **Parse CPU: {total_new['median']:.2f} CPU-s for all {r['feeds']} feeds (parsing "
        f"{r['new_parse']['median']:.2f} + matching {r['new_decide']['median']:.2f}), against "
        f"a target of ≤ {PARSE_CPU_TARGET} s: {cpu_ok}**; feedparser's "
        f"{r['old_parse']['median']:.2f} CPU-s of parsing became "
        f"{r['new_parse']['median']:.2f} ({r['old_parse']['median'] / r['new_parse']['median']:.1f}"
        "× less).",
        f"* Both paths made the same {r['posts']} posts from the {r['feeds']} feeds: "
        f"{'yes' if r['same_posts'] else 'NO'}; parsers used on the new path: "
        f"{', '.join(r['parsers'])}.",
    ]
    real = r.get("real")
    if real:
        different = f"; different: {', '.join(real['different'])}" if real["different"] else ""
        lines.append(
            f"* **The {real['feeds']} real feeds of `../shared/data/feeds/real/`: "
            f"{real['fast']} took the fast path, {real['equal']} / {real['feeds']} gave the "
            f"same posts, problems and stats as feedparser** ({real['entries']} entries, "
            f"{real['posts']} posts with `match_all`){different}. "
            "`tests/test_feed_fast.py` also compares every field Listener reads, entry for "
            "entry, and the 2,107 files of feedparser's corpus."
        )
    others = r.get("other_runs") or []
    if others:
        lines.append(
            "* Other runs of the whole benchmark on the same box, full poll new path / old path, "
            "median (min–max): "
            + "; ".join(
                f"{_s(o['new'])} / {_s(o['old'])} s, parse + match "
                f"{o['new_parse_total']['median']:.2f} / {o['old_parse_total']['median']:.2f} "
                f"CPU-s (load {o['load']:.1f})"
                for o in others
            )
            + "."
        )
    lines.append(
        f"* New path with {r['parse_workers']} parse processes: {new['median']:.2f} s; with "
        f"every parse in the polling process: {here['median']:.2f} s (same run). The polling "
        f"process itself spends {r['new_cpu']:.2f} CPU-s fetching (httpx and 64 threads); the "
        "parse processes take the parsing off its GIL, which pays when cores are free."
    )
    if r.get("sequential"):
        lines.append(
            f"* One by one (1 thread): {r['sequential']:.2f} s, "
            f"{r['sequential'] / new['median']:.1f}× the concurrent poll; with "
            f"{r['compare']} threads instead of {r['concurrency']}: "
            f"{r['compare_seconds']:.2f} s."
        )
    lines += [
        f"* One feed alone, fresh client: {r['single']:.3f} s (its request: "
        f"{r['fetch']:.3f} s); parse pool start-up, once per process: {r['pool_start']:.2f} s.",
        f"* **Unchanged re-poll: {r['unchanged_304']}/{r['feeds']} answered 304, "
        f"{r['unchanged_parsed']} parsed**, {r['unchanged']:.3f} s.",
    ]
    p = r.get("pipeline")
    if p:
        lines.append(
            f"* Through `listener.pipeline.poll_sources` (SQLite, lexicon classifier, storing "
            f"{r['posts']} mentions): first poll {p['first']:.2f} s, unchanged poll "
            f"{p['unchanged']:.2f} s ({p['first_errors']:.0f} / {p['unchanged_errors']:.0f} "
            "source errors); storage is the subject of issue #19's set-based path."
        )
    lines += [
        "",
        f"Reproduce: `.venv/bin/python bench/feeds.py --repeat {r['repeat']} --json run.json "
        "--write-docs`; `--from-json run.json other.json … --write-docs` reports saved runs.",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) only the "## Feed polling" section of ``path``."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    section = section.rstrip("\n") + "\n"
    start = text.find("## Feed polling")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("\n" + text[end + 1 :] if end >= 0 else "")
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None, measure_fn: Callable[..., dict[str, Any]] = measure) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", type=int, default=16, help="a second worker count")
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--quick", action="store_true", help="skip the one-by-one poll")
    parser.add_argument("--real", type=Path, default=REAL_FEEDS, help="real feeds to compare")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        help="report saved runs instead of measuring: the first in full, the others in one line",
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    if args.from_json:
        runs = [json.loads(path.read_text(encoding="utf-8")) for path in args.from_json]
        results = {**runs[0], "other_runs": runs[1:]}
    else:
        results = measure_fn(args)
    section = report(results)
    print(section)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    if args.write_docs:
        write_section(ROOT / "docs" / "benchmarks.md", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
