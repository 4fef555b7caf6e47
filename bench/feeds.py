"""Feed polling benchmark: 200 feeds × 50 entries behind 100 ms of latency.

Synthetic but realistic RSS 2.0 feeds (HTML content with paragraphs, links,
images and tracking pixels; ~10 % of entries mention the brand) are written
to a temporary folder and served by ``tests/feedserver.py`` threading
servers in a *separate process* (so serving does not compete for this
process's GIL), spread over 50 loopback hosts (127.0.0.2 …) with 4 feeds each
so the per-host bound behaves as it would on the internet.  Every response
is delayed by ``--latency``.

Measured, in this process, driving :class:`FeedCollector` the way the
pipeline does (a ``ThreadPoolExecutor`` bounded by ``max_concurrency``;
feeds parsed by the parse-process pool, ``polling.parse_workers``):

1. one feed alone (latency + parse of a single feed);
2. a full poll one-by-one (1 worker) and concurrently (``max_concurrency``),
   and concurrently with every parse in this process (``parse_workers: 0``);
3. a second, unchanged poll with the stored ETags: all 304, nothing parsed;
4. the same two polls through ``listener.pipeline.poll_sources`` (storage
   and the fast lexicon classifier included), when the pipeline exists.

Run: ``.venv/bin/python bench/feeds.py [--feeds 200 --entries 50 --latency 0.1] [--write-docs]``
"""

from __future__ import annotations

import argparse
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
    entries_to_posts,
    parse_document,
)

BRAND = {"name": "Acme", "keywords": ["Acme Shoes"], "exclusions": ["Acme Corporation"]}
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
    started, cpu, wcpu = time.perf_counter(), time.process_time(), workers_cpu()
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


def offline_parse(folder: Path, settings: Any) -> float:
    """CPU seconds to parse and match every feed file once, no network (the "parse time").

    CPU rather than wall time, so other work on the machine does not inflate it.
    """
    url = "http://bench.example/feed"
    source = feed_source(url)
    bodies = [path.read_bytes() for path in sorted(folder.glob("feed*.xml"))]
    started = time.process_time()
    for body in bodies:
        parsed = parse_document(body, {"content-type": "application/xml", "content-location": url})
        entries_to_posts(parsed, source, settings.brand, datetime.now(UTC))
    return time.process_time() - started


def run_polls(args: argparse.Namespace, urls: list[str], folder: Path) -> dict[str, Any]:
    settings = feed_settings(
        brand=BRAND, polling={"max_concurrency": args.concurrency, "timeout": "30s"}
    )
    in_process = feed_settings(
        brand=BRAND,
        polling={"max_concurrency": args.concurrency, "timeout": "30s", "parse_workers": 0},
    )
    fresh = [PollState() for _ in urls]
    parsing.shutdown()
    cold = poll(urls[:4], fresh[:4], settings, 4)  # starts the parse pool (+ imports, caches)
    warm = poll(urls[:4], fresh[:4], settings, 4)
    singles = [poll([u], [PollState()], settings, 1) for u in urls[:5]]
    sequential = poll(urls, fresh, settings, 1)
    concurrent = [poll(urls, fresh, settings, args.concurrency) for _ in range(args.repeat)]
    here = [poll(urls, fresh, in_process, args.concurrency) for _ in range(args.repeat)]
    states = [r.state for r in concurrent[0].results]
    unchanged = [poll(urls, states, settings, args.concurrency) for _ in range(args.repeat)]
    parse = min(offline_parse(folder, settings) for _ in range(args.repeat))
    fewer = [poll(urls, fresh, settings, args.compare) for _ in range(args.repeat)]
    out: dict[str, Any] = {
        "feeds": len(urls),
        "entries": args.entries,
        "latency": args.latency,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "load": os.getloadavg()[0],
        "feed_kb": sum(r.stats.get("bytes", 0) for r in concurrent[0].results) / len(urls) / 1024,
        "single": statistics.median(p.seconds for p in singles),
        "fetch": sequential.median_fetch,
        "sequential": sequential.seconds,
        "concurrent": statistics.median(p.seconds for p in concurrent),
        "concurrent_best": min(p.seconds for p in concurrent),
        "concurrent_cpu": statistics.median(p.process_cpu for p in concurrent),
        "concurrent_workers_cpu": statistics.median(p.workers_cpu for p in concurrent),
        "parse_workers": parsing.worker_count(settings.polling.parse_workers),
        "pool_start": max(cold.seconds - warm.seconds, 0.0),
        "in_process": statistics.median(p.seconds for p in here),
        "in_process_cpu": statistics.median(p.process_cpu for p in here),
        "compare": args.compare,
        "compare_seconds": statistics.median(p.seconds for p in fewer),
        "compare_cpu": statistics.median(p.process_cpu for p in fewer),
        "cpu": parse,
        "posts": concurrent[0].posts,
        "unchanged": statistics.median(p.seconds for p in unchanged),
        "unchanged_parsed": max(p.parsed for p in unchanged),
        "unchanged_304": min(sum(1 for r in p.results if r.not_modified) for p in unchanged),
        "pipeline": None if args.no_pipeline else through_pipeline(urls, folder, args.concurrency),
    }
    out["target"] = 3 * out["fetch"] + out["cpu"]
    return out


def report(r: dict[str, Any]) -> str:
    """The "## Feed polling" section of docs/benchmarks.md."""
    within = "within" if r["concurrent"] <= r["target"] else "over"
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
        f"core). Wall-clock seconds on the 2-core dev box (load average {r['load']:.1f} while "
        f"measuring); concurrent and unchanged polls are the median of {r['repeat']} runs.",
        "",
        "| measurement | seconds |",
        "|---|---|",
        f"| one feed alone, fresh client (connect + latency + parse) | {r['single']:.3f} |",
        f"| one feed's request, median (its latency) | {r['fetch']:.3f} |",
        f"| full poll, one by one (1 thread) | {r['sequential']:.2f} |",
        f"| **full poll, concurrent: median (best)** | **{r['concurrent']:.2f}** "
        f"({r['concurrent_best']:.2f}) |",
        f"| CPU time of that poll: this process (fetching) + parse processes | "
        f"{r['concurrent_cpu']:.2f} + {r['concurrent_workers_cpu']:.2f} |",
        f"| full poll, concurrent, every parse in this process (`parse_workers: 0`) "
        f"(its CPU time) | {r['in_process']:.2f} ({r['in_process_cpu']:.2f}) |",
        f"| full poll with {r['compare']} threads instead | {r['compare_seconds']:.2f} |",
        f"| parse + match of all {r['feeds']} feeds one after another, no network (CPU) | "
        f"{r['cpu']:.2f} |",
        f"| target: 3 × one feed's latency + parse time | {r['target']:.2f} |",
        f"| unchanged re-poll (all 304) | {r['unchanged']:.3f} |",
        f"| parse pool start-up (paid once per process, by its first poll) | "
        f"{r['pool_start']:.2f} |",
        "",
        f"* **Concurrent vs one-by-one: {r['sequential'] / r['concurrent']:.1f}× faster** "
        f"({r['sequential']:.2f} s → {r['concurrent']:.2f} s); {r['posts']} posts matched.",
        f"* **Full poll / target = {r['concurrent'] / r['target']:.2f}** "
        f"(best run {r['concurrent_best'] / r['target']:.2f}; target 3 × "
        f"{r['fetch'] * 1000:.0f} ms + {r['cpu']:.2f} s parse time; {within} target). The "
        f"{r['feeds']} × {r['latency'] * 1000:.0f} ms of latency overlap, so a full poll costs "
        "its CPU: feedparser is pure Python, and parsing is nearly all of it.",
        f"* **Parse processes vs parsing in the polling process: "
        f"{r['in_process'] / r['concurrent']:.1f}× faster** ({r['in_process']:.2f} s → "
        f"{r['concurrent']:.2f} s, same run). In one process the GIL lets one feed parse at a "
        f"time, and the fetching threads compete with it for the GIL "
        f"({r['in_process_cpu']:.2f} CPU-s for {r['cpu']:.2f} CPU-s of parsing); with "
        f"{r['parse_workers']} parse processes every core parses while this process only "
        f"fetches ({r['concurrent_cpu']:.2f} CPU-s).",
        f"* With {r['compare']} threads the same poll takes {r['compare_seconds']:.2f} s "
        f"({r['compare_seconds'] / r['target']:.2f} of target).",
        f"* **Unchanged re-poll: {r['unchanged_304']}/{r['feeds']} answered 304, "
        f"{r['unchanged_parsed']} parsed**, {r['unchanged']:.3f} s "
        f"({r['concurrent'] / max(r['unchanged'], 1e-9):.0f}× faster than the full poll; "
        f"{r['feeds']} requests in waves of {r['concurrency']}).",
    ]
    p = r.get("pipeline")
    if p:
        lines.append(
            f"* Through `listener.pipeline.poll_sources` (SQLite, lexicon classifier, storing "
            f"{r['posts']} mentions): first poll {p['first']:.2f} s, unchanged poll "
            f"{p['unchanged']:.2f} s ({p['first_errors']:.0f} / {p['unchanged_errors']:.0f} "
            "source errors)."
        )
    lines += ["", "Reproduce: `.venv/bin/python bench/feeds.py --write-docs`.", ""]
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
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    results = measure_fn(args)
    section = report(results)
    print(section)
    if args.write_docs:
        write_section(ROOT / "docs" / "benchmarks.md", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
