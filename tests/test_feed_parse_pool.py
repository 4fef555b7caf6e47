"""Feeds parsed in the parse-process pool: same results as in-process, and it survives deaths."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedserver import feed_settings, feed_source

from listener.collectors import parsing
from listener.collectors.base import CollectContext, PollState
from listener.collectors.feed import FeedCollector, decode, decode_here
from listener.cpu import available_cores
from listener.errors import SourceFailing, TransientError

BRAND = {"name": "Apple", "keywords": ["iPhone", "iPad", "MacBook"], "exclusions": ["Apple pie"]}
WHEN = datetime(2026, 11, 1, tzinfo=UTC)


def _die() -> None:
    os._exit(3)  # a worker killed mid-parse (the kernel's OOM killer, say)


def _pid() -> int:
    return os.getpid()


@pytest.fixture
def real_feeds(shared_data: Path) -> list[Path]:
    files = sorted(p for p in (shared_data / "feeds" / "real").rglob("*") if p.is_file())
    assert len(files) > 10
    return files


def test_pool_and_in_process_decode_the_same(real_feeds: list[Path]) -> None:
    settings = feed_settings(brand=BRAND)
    source = feed_source("http://feeds.example/f", match_all=True)
    headers = {"content-location": "http://feeds.example/f"}
    matched = 0
    for path in real_feeds:
        body = path.read_bytes()
        args = (body, headers, source, settings.brand, WHEN)
        try:
            here = decode_here(*args)
        except SourceFailing as exc:  # not a feed: the pool must say the same
            with pytest.raises(SourceFailing, match="not an RSS/Atom feed") as info:
                parsing.run(2, decode, *args)
            assert str(info.value) == str(exc)
            continue
        posts, problems, stats = parsing.run(2, decode, *args)
        assert posts == here[0], path.name
        assert problems == here[1]
        assert {k: v for k, v in stats.items() if not k.endswith("_s")} == {
            k: v for k, v in here[2].items() if not k.endswith("_s")
        }
        matched += len(posts)
    assert matched > 100
    assert parsing.worker_pids(), "the pool should be running"
    assert os.getpid() not in {parsing.run(2, _pid) for _ in range(4)}


def test_a_dead_worker_costs_one_feed_and_the_pool_recovers(real_feeds: list[Path]) -> None:
    body = next(p for p in real_feeds if p.suffix == ".xml").read_bytes()
    settings = feed_settings(brand=BRAND)
    args = (body, {}, feed_source("http://f", match_all=True), settings.brand, WHEN)
    before = parsing.run(2, decode, *args)
    with pytest.raises(TransientError, match="parser process died"):
        parsing.run(2, _die)
    assert parsing.run(2, decode, *args)[0] == before[0]


def test_parse_workers_zero_parses_in_this_process(real_feeds: list[Path]) -> None:
    parsing.shutdown()
    settings = feed_settings(brand=BRAND, polling={"parse_workers": 0})
    path = next(p for p in real_feeds if p.suffix == ".xml")
    source = feed_source(path=str(path), match_all=True)
    result = FeedCollector().collect(source, PollState(), CollectContext(settings))
    assert result.posts and result.stats["parsed"]
    assert parsing.worker_pids() == []


def test_worker_count_setting() -> None:
    assert parsing.worker_count(0) == 0
    assert parsing.worker_count(3) == 3
    cores = available_cores()
    assert parsing.worker_count(None) == (cores if cores > 1 else 0)


@pytest.mark.parametrize(("configured", "expected"), [("", 0), ("  parse_workers: 3\n", 3)])
def test_celery_workers_parse_in_process_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configured: str, expected: int
) -> None:
    from listener import tasks

    config = tmp_path / "config.yaml"
    config.write_text("brand:\n  name: Acme\npolling:\n  timeout: 5s\n" + configured)
    monkeypatch.setenv(tasks.CONFIG_ENV, str(config))
    monkeypatch.setattr(tasks, "_state", {})  # this process's cached settings, not behaviour
    assert tasks.settings().polling.parse_workers == expected


def _collect_in_daemon(path: str, queue) -> None:  # type: ignore[no-untyped-def]
    settings = feed_settings(brand=BRAND, polling={"parse_workers": 2})
    source = feed_source(path=path, match_all=True)
    result = FeedCollector().collect(source, PollState(), CollectContext(settings))
    queue.put((len(result.posts), parsing.worker_pids()))


def test_a_process_that_may_not_have_children_parses_in_process(
    real_feeds: list[Path],
) -> None:
    """Celery's prefork children are daemonic: no pool there, and no error either."""
    import multiprocessing

    path = next(p for p in real_feeds if p.suffix == ".xml")
    expected = FeedCollector().collect(
        feed_source(path=str(path), match_all=True),
        PollState(),
        CollectContext(feed_settings(brand=BRAND, polling={"parse_workers": 0})),
    )
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_collect_in_daemon, args=(str(path), queue), daemon=True)
    child.start()
    try:
        count, pids = queue.get(timeout=60)
    finally:
        child.join(10)
    assert count == len(expected.posts) > 0
    assert pids == []


def test_parse_workers_exit_when_their_owner_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed `listener run` must not leave parse processes (or a forkserver) behind."""
    import signal
    import subprocess
    import sys
    import time

    code = (
        "import os, sys, time\n"
        "from listener.collectors import parsing\n"
        "parsing.run(2, os.getpid)\n"
        "print(' '.join(map(str, parsing.worker_pids())), flush=True)\n"
        "time.sleep(60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert pids, "the owner started no parse workers"
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 15
        alive = pids
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [p for p in pids if _running(p)]
        assert not alive, f"parse workers {alive} outlived their owner"
    finally:
        if owner.poll() is None:
            owner.kill()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")
