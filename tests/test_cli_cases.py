"""The case commands: who acts (--by, $LISTENER_USER or the login, the role from the users
table), approve --draft-version, snooze, and nothing hostile reaching the terminal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import webfixtures as wf
import yaml

from listener.app import App
from listener.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """`main()` configures logging onto this test's captured stderr: put it back after."""
    import logging

    import structlog

    saved = structlog.get_config()
    handlers, level = logging.root.handlers[:], logging.root.level
    yield
    structlog.configure(**saved)
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)


@pytest.fixture
def env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[App, Path]]:
    """An App with the web team (ann, bob: agents; lee: lead; mia: marketing) and a config."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "brand": {"name": "Zephyr Shoes", "handles": ["@zephyrshoes"]},
                "database": {"url": db_url},
                "classifier": {"kind": "lexicon"},
                "recovery": {
                    "templates_dir": str(ROOT / "templates"),
                    **wf.WEB_OVERRIDES["recovery"],
                },
            }
        )
    )
    from listener.config import load_settings

    app = App.from_settings(load_settings(cfg))
    wf.add_users(app, *wf.TEAM)
    monkeypatch.delenv("LISTENER_USER", raising=False)
    yield app, cfg
    app.close()


def run(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["--config", str(cfg), *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


Run = Callable[..., tuple[int, str, str]]


def test_the_same_identity_rule_for_every_case_command(
    env: tuple[App, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, cfg = env
    cid = wf.seed_case(app, channel="blog_comment")
    code, out, err = run(capsys, cfg, "claim", str(cid), "--by", "ann")
    assert code == 0 and f"case {cid}  claimed  (ann)" in out, err
    # the next command, without --by, acts as $LISTENER_USER: the same person
    monkeypatch.setenv("LISTENER_USER", "ann")
    code, out, err = run(capsys, cfg, "draft", str(cid), "--text", "So sorry, Maria!")
    assert code == 0 and "reply (version 2):" in out, err
    monkeypatch.setenv("LISTENER_USER", "bob")
    code, _, err = run(capsys, cfg, "draft", str(cid), "--text", "Bob's words")
    assert code == 2 and err.strip() == f"error: case {cid} is claimed by ann"
    # --by wins over $LISTENER_USER; the login is the last resort
    monkeypatch.setattr("getpass.getuser", lambda: "lee")
    monkeypatch.delenv("LISTENER_USER")
    code, out, err = run(capsys, cfg, "offer", str(cid), "--none")
    assert code == 0, err  # lee, a lead, may act on ann's case


def test_unknown_users_and_false_roles_exit_2(
    env: tuple[App, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    app, cfg = env
    cid = wf.seed_case(app, channel="blog_comment")
    with app.sessions() as s:
        from sqlalchemy import select

        from listener import models as m

        mid = s.scalar(select(m.Mention.id))
    for args in (
        ("approve", str(cid), "--by", "zed", "--role", "lead"),
        ("claim", str(cid), "--by", "zed"),
        ("reject", str(cid), "--by", "zed", "--reason", "spam"),
        ("label", str(mid), "--not-unhappy", "--by", "zed"),
    ):
        code, out, err = run(capsys, cfg, *args)
        assert code == 2 and "unknown user 'zed'" in err and err.count("\n") == 1, (args, err)
    code, _, err = run(capsys, cfg, "approve", str(cid), "--by", "ann", "--role", "lead")
    assert code == 2 and err.strip() == "error: ann is an agent, not a lead"
    code, _, err = run(capsys, cfg, "claim", str(cid), "--by", "mia")
    assert code == 2 and "mia (marketing) may not claim" in err
    code, out, _ = run(capsys, cfg, "show", str(cid))
    assert "claimed" not in out and "approved" not in out  # nothing happened


def test_approve_the_version_you_read(
    env: tuple[App, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    app, cfg = env
    cid = wf.seed_case(app, channel="blog_comment")
    run(capsys, cfg, "offer", str(cid), "--none", "--by", "ann")
    code, out, _ = run(capsys, cfg, "draft", str(cid), "--json")
    assert json.loads(out)["version"] == 1
    run(capsys, cfg, "draft", str(cid), "--text", "Bob's newer reply", "--by", "bob")
    code, _, err = run(capsys, cfg, "approve", str(cid), "--by", "ann", "--draft-version", "1")
    assert code == 2 and "the reply changed since you saw it" in err and "by bob" in err
    code, out, err = run(capsys, cfg, "approve", str(cid), "--by", "ann", "--draft-version", "2")
    assert code == 0 and "approved" in out and "Bob's newer reply" in out, err


def test_snooze_hides_a_case_from_the_queue(
    env: tuple[App, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    app, cfg = env
    cid = wf.seed_case(app)
    other = wf.seed_case(app, "Zephyr sizes run small", handle="@small", priority=10)
    code, out, err = run(
        capsys, cfg, "snooze", str(cid), "--for", "2h", "--note", "order number?", "--by", "ann"
    )
    assert code == 0 and "snoozed until" in out, err
    _, out, _ = run(capsys, cfg, "queue", "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [other]
    _, out, _ = run(capsys, cfg, "queue", "--json", "--status", "snoozed")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["id"] == cid and row["snooze_note"] == "order number?"
    code, out, _ = run(capsys, cfg, "snooze", str(cid), "--wake", "--by", "ann")
    _, out, _ = run(capsys, cfg, "queue", "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == [cid, other]


def test_c1_controls_never_reach_the_terminal(
    env: tuple[App, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    app, cfg = env
    hostile = "Zephyr \x9b31mred\x9b0m \x1b[2J cleared \u202eevil"
    cid = wf.seed_case(app, hostile, handle="@x\x9bx", draft="Sorry \x9b1m!")
    for args in (("show", str(cid)), ("queue",), ("draft", str(cid))):
        code, out, err = run(capsys, cfg, *args)
        assert code == 0, err
        for ch in ("\x9b", "\x1b", "\u202e"):
            assert ch not in out, (args, repr(ch))
    _, out, _ = run(capsys, cfg, "show", str(cid))
    assert "\\x9b31mred" in out and "\\x1b[2J" in out  # shown, escaped
    for args in (("show", str(cid), "--json"), ("queue", "--json")):
        _, out, _ = run(capsys, cfg, *args)
        assert "\x9b" not in out and "\u202e" not in out and "\\u009b" in out
        data = json.loads(out.splitlines()[0])
        assert data["text"] == hostile  # the JSON still decodes to the stored text


def test_the_report_reads_as_tables(
    env: tuple[App, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    app, cfg = env
    cid = wf.seed_case(app, channel="blog_comment")
    wf.seed_case(app, "Zephyr billed me twice", handle="@b", category="billing")
    run(capsys, cfg, "offer", str(cid), "--none", "--by", "ann")
    run(capsys, cfg, "approve", str(cid), "--by", "ann")
    run(capsys, cfg, "mark-sent", str(cid), "--by", "ann")
    code, out, err = run(capsys, cfg, "report", "--since", "1d")
    assert code == 0, err
    assert "Per agent" in out and "Per category" in out and "billing" in out and "ann" in out
    assert "None" not in out and "{" not in out and "+00:00" not in out
    code, out, _ = run(capsys, cfg, "report", "--json")
    report: dict[str, Any] = json.loads(out)
    (ann,) = [r for r in report["by_agent"] if r["agent"] == "ann"]
    assert ann["cases"] == 1 and ann["replied"] == 1
