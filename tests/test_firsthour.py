"""The first hour (#15): packaged defaults, a starter config, the offline demo's loop, and
the README's tour, followed step by step."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from listener.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def lexicon(folder: Path) -> None:
    """The starter config with the fast lexicon classifier (as tests/test_cli.py does)."""
    cfg = folder / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["classifier"] = {**(data.get("classifier") or {}), "kind": "lexicon"}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture
def demo(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty folder as the working directory, on this test's database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LISTENER_DATABASE_URL", db_url)
    monkeypatch.delenv("LISTENER_USER", raising=False)
    yield tmp_path


def run(args: list[str], **kw: Any) -> Any:
    result = CliRunner().invoke(cli, args, catch_exceptions=False, **kw)
    return result


# ---------------------------------------------------------------------------
# packaged defaults


def test_init_in_an_empty_folder_writes_a_starter_and_drafts_every_case(demo: Path) -> None:
    first = run(["init"])
    assert first.exit_code == 0, first.output
    assert "wrote" in first.output and (demo / "config.yaml").is_file()
    text = (demo / "config.yaml").read_text()
    assert text.startswith("#") and "templates_dir" in text  # commented, explains the key
    assert (demo / "examples" / "social.jsonl").is_file()
    lexicon(demo)
    again = run(["init"])
    assert again.exit_code == 0 and "wrote" not in again.output  # never overwritten
    assert run(["poll"]).exit_code == 0
    rows = [json.loads(x) for x in run(["queue", "--json"]).output.splitlines()]
    assert rows and all(r["draft"] for r in rows)


def test_a_brand_folder_overrides_the_packaged_templates_file_by_file(demo: Path) -> None:
    from listener.defaults import packaged_templates
    from listener.drafting import make_environment, render

    ours = demo / "ours"
    (ours / "replies" / "x_reply").mkdir(parents=True)
    (ours / "replies" / "x_reply" / "default.j2").write_text("{{ handle }} ours, {{ name }}")
    env = make_environment(str(ours))
    names = env.list_templates()
    packaged = make_environment(None).list_templates()
    assert set(names) == set(packaged)  # every packaged file still there
    ctx = {"handle": "@ann", "name": "Ann"}
    assert render(ours, "x_reply", "no_such_category", ctx, seed="1").text == "@ann ours, Ann"
    # a file the brand did not write comes from the package
    assert (packaged_templates() / "replies" / "email" / "default.j2").is_file()
    copied = run(["templates", "copy", str(demo / "copy")])
    assert copied.exit_code == 0, copied.output
    assert (demo / "copy" / "replies" / "x_reply" / "default.j2").is_file()
    again = run(["templates", "copy", str(demo / "copy")])
    assert "copied 0 template(s)" in again.output  # edits are never overwritten


@pytest.mark.parametrize("command", [["init"], ["config"]])
def test_a_missing_templates_dir_stops_init_and_config_naming_the_key(
    demo: Path, command: list[str]
) -> None:
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["recovery"]["templates_dir"] = "no-such-folder"
    (demo / "config.yaml").write_text(yaml.safe_dump(data))
    proc = subprocess.run(
        [sys.executable, "-m", "listener", *command],
        cwd=demo,
        env={**os.environ, "LISTENER_DATABASE_URL": os.environ["LISTENER_DATABASE_URL"]},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "recovery.templates_dir" in proc.stderr and "no-such-folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


PIP = (sys.executable, "-m", "pip")
BUILD_INPUTS = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "config.yaml",
    "listener",
    "classifiers",
    "templates",
    "examples",
)


@pytest.mark.slow
@pytest.mark.model
def test_the_built_wheel_drafts_every_case_outside_the_repository(tmp_path: Path) -> None:
    """Acceptance 1: the wheel, installed into a fresh virtualenv (over the suite's own
    packages, so nothing is downloaded), initialised in an empty folder."""
    import shutil

    # build from a copy of what the wheel is made of (setuptools builds in the tree)
    src = tmp_path / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path / "dist"
    build = subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("listener-*.whl")
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
        timeout=120,
    )
    python = venv / "bin" / "python"
    # the suite's own site-packages after the new venv's (a plain path: its editable
    # install of this checkout is not loaded, so `listener` comes from the wheel)
    import sysconfig

    site = Path(
        subprocess.check_output(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            text=True,
        ).strip()
    )
    (site / "suite.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    folder = tmp_path / "brand"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("LISTENER_DATABASE_URL", "PYTHONPATH")}
    where = subprocess.check_output(
        [str(venv / "bin" / "python"), "-c", "import listener; print(listener.__file__)"],
        cwd=folder,
        env=env,
        text=True,
    )
    assert str(site) in where, where  # the wheel's copy, not this checkout
    exe = str(venv / "bin" / "listener")

    def listener(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=280
        )

    init = listener("init")
    assert init.returncode == 0, init.stderr
    assert (folder / "config.yaml").is_file() and not (folder / "templates").exists()
    poll = listener("poll")
    assert poll.returncode == 0, poll.stderr
    assert "problem" not in poll.stdout  # the local feed parses cleanly
    rows = [json.loads(x) for x in listener("queue", "--json").stdout.splitlines()]
    assert len(rows) >= 10
    assert all(r["draft"] for r in rows), [r["id"] for r in rows if not r["draft"]]
    check = listener("templates", "check")
    assert check.returncode == 0, check.stderr


# ---------------------------------------------------------------------------
# the README's tour


def tour_commands() -> list[str]:
    """The command lines of the README's five-minute tour, comments removed."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A five-minute tour", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the tour has a shell block"
    lines = []
    for raw in block.group(1).splitlines():
        line = re.split(r"\s{2,}#", raw, maxsplit=1)[0].strip()
        if line:
            lines.append(line)
    return lines


def test_the_readme_tour_closes_the_loop(demo: Path) -> None:
    """Acceptance 2: make run → claim, edit, approve, send --once, resolve; each exits 0."""
    env: dict[str, str] = {}
    case: int | None = None
    seen: list[str] = []
    for line in tour_commands():
        if line == "make run":  # the Makefile's run target, in this folder
            assert run(["init"]).exit_code == 0
            lexicon(demo)
            for args in (["run", "--once"], ["queue"]):
                result = run(args)
                assert result.exit_code == 0, (args, result.output)
            continue
        if line.startswith(". .venv/bin/activate"):
            continue
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
            continue
        words = shlex.split(line)
        assert words[0] == "listener", line
        if case is None and "CASE" in words:
            rows = [json.loads(x) for x in run(["queue", "--json"]).output.splitlines()]
            case = next(r["id"] for r in rows if r["channel"] == "x_reply")
        args = [
            str(case) if w == "CASE" else "Sorry about this, we're on it." if w == "TEXT" else w
            for w in words[1:]
        ]
        result = run(args, env=env, input="correct horse battery\ncorrect horse battery\n")
        assert result.exit_code == 0, (line, result.output)
        seen.append(args[0])
        if args[0] == "send":
            assert "sent 1 message" in result.output, result.output
    assert seen[-5:] == ["claim", "draft", "approve", "send", "resolve"]
    assert case is not None
    shown = json.loads(run(["show", str(case), "--json"]).output)
    assert shown["status"] == "resolved"
    (message,) = shown["outbox"]
    assert message["status"] == "sent" and message["external_id"].startswith("local:")
    delivered = [json.loads(x) for x in (demo / "var" / "outbox.jsonl").read_text().splitlines()]
    assert [d["case_id"] for d in delivered] == [case]
    assert delivered[0]["text"] == message["text"]
