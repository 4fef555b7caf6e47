"""Docs that fail when they lag behind the code."""

from __future__ import annotations

from pathlib import Path

from listener.cli import COMMANDS
from listener.docsgen import config_reference

ROOT = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == config_reference(), (
        "docs/configuration.md is out of date: run "
        "`.venv/bin/listener config --reference > docs/configuration.md`"
    )


def test_every_setting_has_help_text() -> None:
    missing = [
        line.split("|")[1].strip()
        for line in config_reference().splitlines()
        if line.startswith("| `") and line.rstrip().endswith("|  |")
    ]
    assert not missing, f"settings without a description: {missing}"


def test_readme_mentions_every_command() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [c for c in COMMANDS if f"listener {c}" not in readme]
    assert not missing, f"README.md does not mention: {missing}"


def test_changelog_and_design_notes_exist() -> None:
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
    assert "## Decisions" in (ROOT / "docs" / "design.md").read_text()
