"""Reply templates: coverage, variety, and `listener templates check`."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import yaml
from click.testing import CliRunner

from listener.app import App
from listener.cli import cli
from listener.config import settings_from_dict
from listener.drafting import draft_context, make_environment, render
from listener.template_check import check_templates

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = ("x_reply", "mastodon_reply", "email", "dm", "blog_comment")


def test_every_channel_has_a_fallback_variants_and_praise() -> None:
    """One layout per channel: ``default[.n].j2`` places the composed parts (so a wrong
    category never means a wrong reply), ``praise.j2`` thanks; users may add
    ``<category>[.n].j2`` or ``<kind>[.n].j2`` of their own."""
    env = make_environment(str(ROOT / "templates"))
    names = env.list_templates()
    for channel in CHANNELS:
        assert f"replies/{channel}/default.j2" in names
        assert f"replies/{channel}/praise.j2" in names
        variants = [n for n in names if n.startswith(f"replies/{channel}/default")]
        assert len(variants) >= 2, channel
        for name in variants:
            source = (ROOT / "templates" / name).read_text()
            assert "gesture_sentence" in source and "question" in source, name


def test_repo_templates_pass_the_check() -> None:
    settings = settings_from_dict(
        yaml.safe_load((ROOT / "config.yaml").read_text()), base_dir=ROOT, env={}
    )
    renders, problems = check_templates(settings)
    assert problems == []
    assert renders > 1000


def test_cli_check_lists_problems_and_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", folder)
    (folder / "replies/x_reply/billing.7.j2").write_text("{{ handle }} Hi {{ nmae }}!\n")
    (folder / "replies/x_reply/billing.8.j2").write_text(
        "{{ handle }} {{ name }}, " + "we are so very sorry. " * 12 + "\n"
    )
    data = yaml.safe_load((ROOT / "config.yaml").read_text())
    data["recovery"]["templates_dir"] = str(folder)
    data["database"] = {"url": f"sqlite:///{tmp_path / 'x.db'}"}
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(cfg), "templates", "check"])
    assert result.exit_code == 1
    out = result.output
    assert "billing.7.j2" in out and "nmae" in out and "UndefinedError" in out
    assert "billing.8.j2" in out and "weighted characters" in out
    ok = runner.invoke(cli, ["--config", str(ROOT / "config.yaml"), "templates", "check"])
    assert ok.exit_code == 0 and "templates ok" in ok.output


def test_variants_differ_between_cases_and_x_fits_with_long_names() -> None:
    from listener.policy import x_weighted_length

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    texts = set()
    for i in range(12):
        ctx = draft_context(
            brand_name="Zephyr Shoes",
            brand_voice="warm",
            brand_handle="@zephyrshoes",
            handle="abcdefghijklmno",
            display_name="Bartholomew-Maximilian Featherstonehaugh",
            channel="x_reply",
            category="delivery",
            circumstances=["bereavement"],
            post_text="My trail runners never came, order #ZS-48213999",
            published_at=now,
            now=now,
            agent_name="Carla Reyes",
            signature="",
            offer={
                "key": "r",
                "kind": "free_replacement",
                "physical": True,
                "description": "we're sending you a brand-new pair at no charge, shipped overnight",
            },
        )
        draft = render(ROOT / "templates", "x_reply", "delivery", ctx, seed=f"case-{i}")
        assert draft.text.startswith("@abcdefghijklmno ")
        assert x_weighted_length(draft.text) <= 280, draft.text
        assert "loss" in draft.text and "address" in draft.text
        texts.add(draft.template)
    assert len(texts) >= 2


def test_pipeline_drafts_use_several_variants(example_app: App) -> None:
    from sqlalchemy import select

    from listener import models as m
    from listener.pipeline import poll_sources

    poll_sources(example_app)
    with example_app.sessions() as s:
        templates = set(s.scalars(select(m.Draft.template)))
    assert len(templates) >= 4
