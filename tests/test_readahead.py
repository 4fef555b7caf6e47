"""Posts read ahead in the parse processes (listener.readahead): the same readings as the
ones done in triage, never waited for, and a missing or dying pool costs only the reading."""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from listener.cases.offering import reading_inputs
from listener.collectors import parsing
from listener.readahead import Ahead, read_all
from listener.understanding import understand

HOSTILE = ["", " ", "\x00\x01", "<script>alert(1)</script>", "💥" * 3000, "ı" * 50, "A" * 9000]


def _posts(shared_data: Path, count: int) -> list[tuple[str, dict[str, Any]]]:
    """Real customer posts, the twcs-dev ones with the brand's post they answer."""
    out: list[tuple[str, dict[str, Any]]] = []
    with (shared_data / "airline-dev" / "Tweets-dev.csv").open(encoding="utf-8") as fh:
        out += [(r["text"], {}) for r in csv.DictReader(fh)][: count // 2]
    with (shared_data / "twcs-dev" / "inbound.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            raw = {k: row[k] for k in ("in_reply_to_text", "in_reply_to_author") if row.get(k)}
            out.append((row["text"], raw))
            if len(out) >= count:
                break
    return out


def _settle(ahead: Ahead, keys: list[Any], timeout: float = 60.0) -> None:
    """Wait until every reading sent is back (tests only: the pipeline never waits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(ahead.get(k) is not None for k in keys):
            return
        time.sleep(0.05)
    raise AssertionError("the readings did not come back")


def test_readings_done_ahead_equal_the_ones_done_here(
    make_settings: Any, shared_data: Path
) -> None:
    settings = make_settings(
        {
            "polling": {"read_ahead": 1, "parse_workers": 1},
            "brand": {"handles": ["@sprintcare", "@Ask_Spectrum", "@AppleSupport"]},
        }
    )
    terms = list(settings.brand.match_terms)
    categories = [None, "shipping", "billing", "product_quality"]
    keys = [
        reading_inputs(settings, text, raw, categories[i % len(categories)])
        for i, (text, raw) in enumerate([*_posts(shared_data, 400), *((h, {}) for h in HOSTILE)])
    ]
    assert sum(1 for k in keys if k[1]) > 20, "some posts answer another one"
    assert sum(1 for k in keys if k[2]) > 5, "some answer the brand"
    ahead = Ahead()
    ahead.send(settings, keys)
    assert ahead.sent == len(set(keys))
    _settle(ahead, keys)
    for key in keys:
        text, context, by_brand, category = key
        here = understand(
            text, context=context, context_by_brand=by_brand, category=category, brand_terms=terms
        )
        assert ahead.get(key) == here, key
    ahead.close()
    assert ahead.get(keys[0]) is None  # a closed batch answers nothing


def test_a_few_posts_or_no_pool_are_read_in_triage(make_settings: Any) -> None:
    keys = [(f"my order {i} never came", None, False, None) for i in range(10)]
    few = Ahead()
    few.send(make_settings({"polling": {"read_ahead": 11, "parse_workers": 1}}), keys)
    off = Ahead()
    off.send(make_settings({"polling": {"read_ahead": 0, "parse_workers": 1}}), keys)
    no_pool = Ahead()
    no_pool.send(make_settings({"polling": {"read_ahead": 1, "parse_workers": 0}}), keys)
    for ahead in (few, off, no_pool):
        assert ahead.sent == 0
        assert all(ahead.get(k) is None for k in keys)


def _sleep_then_read(keys: list[Any], terms: list[str]) -> Any:
    time.sleep(30)
    return read_all(keys, terms)


def test_a_reading_not_back_yet_is_not_waited_for(make_settings: Any) -> None:
    settings = make_settings({"polling": {"parse_workers": 1}})
    future = parsing.submit(1, _sleep_then_read, [("late", None, False, None)], [])
    assert future is not None
    ahead = Ahead()
    ahead._futures.append(future)
    ahead._where[("late", None, False, None)] = (future, 0)
    started = time.monotonic()
    assert ahead.get(("late", None, False, None)) is None
    assert time.monotonic() - started < 1.0
    for pid in parsing.worker_pids():  # leave no sleeping worker behind
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(Exception):  # noqa: B017 - BrokenProcessPool
        future.result(timeout=30)
    assert ahead.get(("late", None, False, None)) is None  # a dead worker: read it here
    del settings


def test_a_dead_pool_is_replaced_for_the_next_batch(make_settings: Any) -> None:
    settings = make_settings({"polling": {"read_ahead": 1, "parse_workers": 1}})
    keys = [(f"my parcel {i} is lost, furious", None, False, None) for i in range(5)]
    first = Ahead()
    first.send(settings, keys)
    _settle(first, keys)
    for pid in parsing.worker_pids():
        os.kill(pid, signal.SIGKILL)
    for _ in range(3):  # a pool found broken is replaced (the first try may still see it)
        second = Ahead()
        second.send(settings, keys)
        assert second.sent == len(keys)
        try:
            _settle(second, keys, timeout=15)
            return
        except AssertionError:
            continue
    raise AssertionError("no new pool after the workers died")
