"""The CLI on the embedded default: init → run --once → queue, and its contracts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import QUEUE_KEYS

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "transformers", "sqlalchemy", "feedparser", "tweepy", "httpx", "jinja2")


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from listener.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "queue" in proc.stdout and "classify" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def workdir(tmp_path: Path, db_url: str) -> tuple[Path, dict[str, str]]:
    """A copy of the shipped config, examples and templates, on this test's database."""
    for name in ("config.yaml", "examples", "templates"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    # the shipped default model is the transformer; these CLI tests use the fast lexicon
    data["classifier"] = {**(data.get("classifier") or {}), "kind": "lexicon"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, "LISTENER_DATABASE_URL": db_url}
    return tmp_path, env


def listener(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "listener", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_main_job_on_the_embedded_default(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    init = listener(["init"], cwd, env)
    assert init.returncode == 0, init.stderr
    assert "example-blogs" in init.stdout
    run = listener(["run", "--once"], cwd, env)
    assert run.returncode == 0, run.stderr
    assert "example-social" in run.stdout
    queue = listener(["queue", "--json"], cwd, env)
    assert queue.returncode == 0, queue.stderr
    cases = [json.loads(line) for line in queue.stdout.splitlines()]
    assert cases
    for case in cases:
        assert set(case) >= QUEUE_KEYS
        assert case["draft"], "every case is drafted"
        assert isinstance(case["reasons"], list) and isinstance(case["priority"], int)
    # again: nothing is due, nothing changes; a forced poll adds no duplicates
    assert listener(["run", "--once"], cwd, env).returncode == 0
    assert listener(["poll"], cwd, env).returncode == 0
    again = [json.loads(x) for x in listener(["queue", "--json"], cwd, env).stdout.splitlines()]
    assert [c["id"] for c in again] == [c["id"] for c in cases]
    human = listener(["queue"], cwd, env)
    assert human.returncode == 0 and "open case(s)" in human.stdout
    sources = [json.loads(x) for x in listener(["sources", "--json"], cwd, env).stdout.splitlines()]
    assert {s["name"]: s["health"] for s in sources} == {
        "example-blogs": "ok",
        "example-social": "ok",
    }
    shown = listener(["show", str(cases[0]["id"]), "--json"], cwd, env)
    detail = json.loads(shown.stdout)
    kinds = [e["kind"] for e in detail["events"]]
    # one draft, written after the batch's posts joined the case (it answers all of them)
    assert kinds[0] == "case.opened" and kinds.count("draft.created") == 1, kinds
    assert set(kinds[1 : kinds.index("draft.created")]) <= {"case.mention_added", "case.followup"}


def test_poll_unknown_source_is_one_line(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    proc = listener(["poll", "--source", "nope"], cwd, env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: no source named 'nope' in config.yaml"


def test_config_command_hides_secrets(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    cfg = cwd / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["web"]["secret_key"] = "${WEB_KEY}"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    proc = listener(["config", "--json"], cwd, {**env, "WEB_KEY": "hunter2-very-secret"})
    assert proc.returncode == 0, proc.stderr
    assert "hunter2" not in proc.stdout
    assert json.loads(proc.stdout)["brand"]["name"] == "Zephyr Shoes"
