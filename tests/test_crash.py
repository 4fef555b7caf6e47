"""A poll killed with SIGKILL mid-run loses nothing and duplicates nothing on re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select

from listener import models as m
from listener.app import App
from listener.config import load_settings

SOURCES = 8
POSTS = 300


def _write_sources(tmp_path: Path) -> list[dict[str, Any]]:
    sources = []
    for s in range(SOURCES):
        path = tmp_path / f"posts-{s}.jsonl"
        with path.open("w") as fh:
            for i in range(POSTS):
                mood = ["lost my package, furious", "love my new boots", "order arrived"][i % 3]
                fh.write(
                    json.dumps(
                        {
                            "id": f"{s}-{i}",
                            "author": f"user{i % 97}",
                            "text": f"Zephyr Shoes {mood} (#{i})",
                            "created_at": f"2026-11-20T{i % 24:02d}:{i % 60:02d}:00Z",
                        }
                    )
                    + "\n"
                )
        sources.append({"name": f"src-{s}", "type": "jsonl", "path": str(path)})
    return sources


def _counts(app: App) -> tuple[int, int, int]:
    with app.sessions() as s:
        mentions = s.scalar(select(func.count()).select_from(m.Mention))
        distinct = s.scalar(select(func.count(func.distinct(m.Mention.external_id))))
        classified = s.scalar(select(func.count()).select_from(m.Classification))
    return int(mentions or 0), int(distinct or 0), int(classified or 0)


def test_sigkill_mid_poll_then_rerun_stores_everything_once(tmp_path: Path, db_url: str) -> None:
    config = {
        "brand": {"name": "Zephyr Shoes"},
        "database": {"url": db_url},
        "sources": _write_sources(tmp_path),
        "classifier": {"kind": "lexicon"},
        "recovery": {"templates_dir": str(Path(__file__).parent.parent / "templates")},
        "polling": {"max_concurrency": 2},
    }
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    app = App.from_settings(load_settings(cfg, env={}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LISTENER_DATABASE_URL", None)
    total = SOURCES * POSTS
    partial_seen = False
    # the poll is killed the moment its first source has committed and before its last
    # has: watched, not timed, so a faster or a loaded machine kills it mid-run alike
    for _attempt in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-m", "listener", "--config", str(cfg), "poll"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if 0 < _counts(app)[0] < total:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        stored, distinct, classified = _counts(app)
        assert stored == distinct == classified  # never a duplicate, never half a mention
        assert stored % POSTS == 0, "each source's poll is one transaction"
        if 0 < stored < total:
            partial_seen = True
            break
        if stored == total:
            break
    assert partial_seen, "the poll was never killed mid-run; adjust the delays"
    done = subprocess.run(
        [sys.executable, "-m", "listener", "--config", str(cfg), "poll"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert _counts(app) == (total, total, total)
    with app.sessions() as s:
        for src in s.scalars(select(m.Source)):
            path = Path(next(x["path"] for x in config["sources"] if x["name"] == src.name))
            assert src.cursor["offset"] == path.stat().st_size
    # and one more poll changes nothing
    again = subprocess.run(
        [sys.executable, "-m", "listener", "--config", str(cfg), "poll", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert {json.loads(line)["status"] for line in again.stdout.splitlines()} == {"not_modified"}
    assert _counts(app) == (total, total, total)
    app.close()
