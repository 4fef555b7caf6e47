"""config.yaml: validation, secrets from the environment, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from listener.config import load_settings, settings_from_dict
from listener.durations import format_duration, parse_duration
from listener.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, data: object) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def minimal() -> dict:
    return {"brand": {"name": "Zephyr Shoes"}}


def test_shipped_config_is_valid() -> None:
    s = load_settings(ROOT / "config.yaml", env={})
    assert s.brand.name == "Zephyr Shoes"
    assert [x.name for x in s.sources] == ["example-blogs", "example-social"]
    assert s.sources[0].interval == timedelta(minutes=15)
    assert s.database.url == "sqlite:///listener.db"
    assert s.base_dir == ROOT


def test_defaults(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, minimal()), env={})
    assert s.triage.first_response_sla == timedelta(hours=1)
    assert s.classifier.threshold == 0.5
    assert "Zephyr Shoes" in s.brand.match_terms


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"brand": {"name": "A", "colour": "red"}}, "brand.colour: unknown key"),
        (
            {"brand": {"name": "A"}, "triage": {"first_response_sla": "soon"}},
            "triage.first_response_sla: invalid duration 'soon'",
        ),
        (
            {"brand": {"name": "A"}, "sources": [{"name": "a", "type": "feed", "interval": "5m"}]},
            "sources[0]: source type 'feed' needs url or path",
        ),
        (
            {"brand": {"name": "A"}, "sources": [{"name": "a", "type": "gopher", "path": "x"}]},
            "sources[0]: unknown source type 'gopher'",
        ),
        (
            {"brand": {"name": "A"}, "web": {"port": "eighty"}},
            "web.port: Input should be a valid integer",
        ),
        ({"brand": {"name": "A"}, "classifier": {"threshold": 2}}, "classifier.threshold:"),
        ({}, "brand: required key is missing"),
        (
            {
                "brand": {"name": "A"},
                "sources": [
                    {"name": "a", "type": "jsonl", "path": "p"},
                    {"name": "a", "type": "jsonl", "path": "q"},
                ],
            },
            "duplicate source name(s): a",
        ),
    ],
)
def test_errors_are_one_line_naming_the_key(tmp_path: Path, data: dict, expected: str) -> None:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path) + ": ")
    assert expected in message


def test_missing_secret_names_key_and_variable(tmp_path: Path) -> None:
    data = {**minimal(), "x": {"bearer_token": "${X_BEARER_TOKEN}"}}
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert str(info.value) == (
        f"{path}: x.bearer_token: environment variable X_BEARER_TOKEN is not set "
        "(the value refers to ${X_BEARER_TOKEN})"
    )
    s = load_settings(path, env={"X_BEARER_TOKEN": "s3cret"})
    assert s.x.bearer_token is not None
    assert s.x.bearer_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s) and "s3cret" not in s.model_dump_json()


def test_env_default_and_database_override(tmp_path: Path) -> None:
    data = {**minimal(), "database": {"url": "${DB:-sqlite:///x.db}"}}
    path = write(tmp_path, data)
    assert load_settings(path, env={}).database.url == "sqlite:///x.db"
    s = load_settings(path, env={"LISTENER_DATABASE_URL": "sqlite:///other.db"})
    assert s.database.url == "sqlite:///other.db"


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "brand:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+"):
        load_settings(path, env={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_relative_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    s = settings_from_dict(minimal(), base_dir=tmp_path, env={})
    assert s.resolve_path("templates") == tmp_path / "templates"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172800),
        ("90", 90),
        (45, 45),
        ("1w", 604800),
    ],
)
def test_durations(text: object, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "soon", "5 minutes", "-5m", "m5", True])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration() -> None:
    assert format_duration(timedelta(minutes=65)) == "1h 5m"
    assert format_duration(timedelta(seconds=-180)) == "-3m"


@pytest.mark.parametrize(
    "data",
    [
        {"brand": {"name": "A", "typo": 1}},
        {"brand": {"name": "A"}, "polling": {"timeout": []}},
        {"brand": {"name": "A"}, "web": {"secret_key": "${NOT_SET_ANYWHERE_123}"}},
    ],
)
def test_cli_exits_nonzero_with_one_line(tmp_path: Path, data: dict) -> None:
    path = write(tmp_path, data)
    proc = subprocess.run(
        [sys.executable, "-m", "listener", "--config", str(path), "sources"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {path}: ")
