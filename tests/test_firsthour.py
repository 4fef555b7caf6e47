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
    ours = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "suite.pth").write_text("".join(f"{p}\n" for p in ours))
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


# ---------------------------------------------------------------------------
# the offline demo's outbox, "sent" by hand, honest output


def test_the_local_outbox_delivers_once_and_skips_torn_lines(tmp_path: Path) -> None:
    from listener.channels.base import OutboundMessage
    from listener.channels.local import LocalOutboxChannel, is_local

    path = tmp_path / "var" / "outbox.jsonl"
    path.parent.mkdir()
    path.write_text('{"idempotency_key": "other"}\n{not json\n')  # hand-edited, torn
    channel = LocalOutboxChannel(path, "x_reply")
    message = OutboundMessage(
        idempotency_key="draft-7", channel="x_reply", text="@ann sorry", in_reply_to="1"
    )
    assert channel.find_existing(message) is None
    first = channel.send(message)
    assert is_local(first) and first.endswith("#3")
    assert channel.send(message) == first == channel.find_existing(message)
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1])["text"] == "@ann sorry"


def test_local_outbox_only_without_credentials_and_never_for_manual_channels(
    make_settings: Any,
) -> None:
    from listener.channels.registry import uses_local_outbox

    on = make_settings({"recovery": {"local_outbox": True}})
    assert uses_local_outbox("x_reply", on) and uses_local_outbox("mastodon_reply", on)
    assert not uses_local_outbox("blog_comment", on) and not uses_local_outbox("hn_comment", on)
    creds = {k: "set" for k in ("consumer_key", "consumer_secret", "access_token")}
    with_x = make_settings(
        {"recovery": {"local_outbox": True}, "x": {**creds, "access_token_secret": "s"}}
    )
    assert not uses_local_outbox("x_reply", with_x)
    assert not uses_local_outbox("x_reply", make_settings())  # off unless configured


def started(demo: Path) -> list[dict[str, Any]]:
    assert run(["init"]).exit_code == 0
    lexicon(demo)
    poll = run(["poll"])
    assert poll.exit_code == 0 and "problem" not in poll.output  # local feeds parse cleanly
    run(["users", "add", "carla", "--role", "agent", "--password-stdin"], input="pw-123456\n")
    return [json.loads(x) for x in run(["queue", "--json"]).output.splitlines()]


def test_sent_by_hand_with_a_note_then_resolve(demo: Path) -> None:
    rows = started(demo)
    blog = next(r for r in rows if r["channel"] == "blog_comment")
    me = {"LISTENER_USER": "carla"}
    for args in (["claim", str(blog["id"])], ["approve", str(blog["id"])], ["send", "--once"]):
        result = run(args, env=me)
        assert result.exit_code == 0, result.output
    assert "sent 0 messages" in result.output  # a blog comment is posted by a person
    sent = run(["sent", str(blog["id"]), "--note", "posted under the article"], env=me)
    assert sent.exit_code == 0, sent.output
    assert run(["resolve", str(blog["id"])], env=me).exit_code == 0
    shown = json.loads(run(["show", str(blog["id"]), "--json"]).output)
    event = next(e for e in shown["events"] if e["kind"] == "reply.sent")
    assert event["data"]["note"] == "posted under the article" and event["data"]["manual"]


def test_show_prints_offers_with_reasons_mention_ids_and_draft_lines(demo: Path) -> None:
    rows = started(demo)
    case = next(r for r in rows if r["channel"] == "blog_comment")
    out = run(["show", str(case["id"])]).output
    assert f"mention {case['mention_id']} " in out
    view = json.loads(run(["show", str(case["id"]), "--json"]).output)
    title = view["posts"][0]["title"]
    assert title and f"  title: {title}" in out  # the title on its own line,
    assert view["posts"][0]["text"].startswith(f"{title}\n\n")  # its own paragraph when stored
    assert f"{title} — " in run(["queue"]).output  # and set off in the one-line queue
    assert "offers" in out and "because " in out
    draft = view["drafts"][-1]["text"]
    assert "\n" in draft  # a multi-line reply: every line shown, indented
    for line in draft.splitlines():
        assert f"  {line}".rstrip() in out.splitlines()


def test_queue_piped_is_one_line_per_case(demo: Path) -> None:
    rows = started(demo)
    out = run(["queue"]).output.splitlines()  # CliRunner's stdout is not a terminal
    assert len(out) == len(rows) + 1 and out[-1] == f"{len(rows)} open case(s)"
    assert all("→" in line for line in out[:-1])


def test_failed_drafts_show_in_queue_and_health(demo: Path) -> None:
    assert run(["init"]).exit_code == 0
    lexicon(demo)
    cfg = demo / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["sources"] = [{**data["sources"][1], "options": {"channel": "carrier_pigeon"}}]
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    assert run(["poll"]).exit_code == 0
    out = run(["queue"]).output
    assert "draft FAILED: no template for channel 'carrier_pigeon'" in out
    rows = [json.loads(x) for x in run(["queue", "--json"]).output.splitlines()]
    assert rows and all(r["draft"] is None and r["draft_error"] for r in rows)
    health = run(["health"])
    assert health.exit_code == 3, health.output
    assert f"drafts    {len(rows)} open case(s) whose draft failed" in health.output


def test_classify_writes_nothing_in_the_working_directory(demo: Path) -> None:
    result = run(["classify", "--format", "text"], input="my order never came\n")
    assert result.exit_code == 0 and json.loads(result.output)["unhappy"] is True
    assert list(demo.iterdir()) == []


def test_train_output_never_says_nan() -> None:
    from listener.cli_model import _no_nan, _score

    assert _score(float("nan")) == "n/a" and _score(0.5) == "0.500" and _score(None) == "n/a"
    assert _no_nan({"a": [float("nan"), 1.0], "b": "nan"}) == {"a": [None, 1.0], "b": "nan"}


def test_health_reports_a_reply_failing_to_send(demo: Path) -> None:
    rows = started(demo)
    cfg = demo / "config.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["recovery"]["local_outbox"] = False  # real use without X credentials
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    case = next(r for r in rows if r["channel"] == "x_reply")
    me = {"LISTENER_USER": "carla"}
    for args in (["claim", str(case["id"])], ["approve", str(case["id"])]):
        assert run(args, env=me).exit_code == 0
    assert "sent 0 messages" in run(["send", "--once"]).output
    health = run(["health"])
    assert health.exit_code == 3, health.output
    assert "sends     1 failing" in health.output and "x.consumer_key" in health.output
    status = json.loads(run(["health", "--json"]).output)
    assert status["work_ok"] is False and status["sends_failing"][0]["case_id"] == case["id"]
