"""Learning from agents: `listener label` stores corrections, `listener train` switches
the model in use only when the new head does not regress."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from listener.cli import cli

ROOT = Path(__file__).resolve().parent.parent

COMPLAINTS = [
    "My order never arrived and nobody answers the phone",
    "Charged twice and still no refund after three weeks",
    "The zipper broke the first day, total junk",
    "Been on hold for an hour, your support is useless",
    "Wrong size again, third exchange this month, so frustrating",
    "Package marked delivered but it's not here. Unacceptable",
]
HAPPY = [
    "Thanks so much, the new boots are perfect!",
    "Support sorted my return in two minutes, amazing",
    "Love the new collection, great quality",
    "Do you have the trail runners in blue?",
    "Just picked up my order at the store",
    "Best shoes I've owned, thank you",
]


def _setup(tmp_path: Path, db_url: str, classifier: dict[str, Any]) -> tuple[Path, list[int]]:
    from listener import models as m
    from listener.app import App
    from listener.config import load_settings

    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "brand": {"name": "Zephyr Shoes"},
                "database": {"url": db_url},
                "recovery": {"templates_dir": str(ROOT / "templates")},
                "classifier": {
                    "kind": "minilm",
                    "models_dir": str(tmp_path / "models"),
                    **classifier,
                },
            }
        )
    )
    app = App.from_settings(load_settings(cfg))
    ids = []
    with app.sessions.begin() as session:
        src = m.Source(name="test", type="jsonl")
        author = m.Author(platform="x", handle="@someone")
        # `listener label` acts as a known user (--by, $LISTENER_USER or the login)
        people = [m.User(username=n, role="agent", password_hash="x") for n in ("ana", "mallory")]
        session.add_all([src, author, *people])
        session.flush()
        for i, text in enumerate(COMPLAINTS + HAPPY):
            mention = m.Mention(
                source_id=src.id,
                external_id=str(i),
                author_id=author.id,
                text=text,
                published_at=datetime.now(UTC),
                content_hash=str(i),
            )
            session.add(mention)
            session.flush()
            ids.append(mention.id)
    app.close()
    return cfg, ids


def _invoke(cfg: Path, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--config", str(cfg), *args], catch_exceptions=False)


@pytest.mark.model
def test_label_then_train_switches_the_model(tmp_path: Path, db_url: str) -> None:
    from classifiers import load_classifier
    from listener import models as m
    from listener.config import load_settings
    from listener.db import make_engine, make_sessionmaker

    cfg, ids = _setup(tmp_path, db_url, {"regression_tolerance": 0.2})
    settings = load_settings(cfg).classifier
    in_use = load_classifier(settings)
    before = in_use.version
    assert before.startswith("minilm-vader-v2")

    for mid, text in zip(ids, COMPLAINTS + HAPPY, strict=True):
        unhappy = text in COMPLAINTS
        args = ["label", str(mid), "--unhappy" if unhappy else "--not-unhappy", "--by", "ana"]
        if mid == ids[0]:
            args += ["--category", "delivery"]
        res = _invoke(cfg, *args)
        assert res.exit_code == 0, res.output
        assert f"mention {mid}" in res.output

    bad = _invoke(cfg, "label", str(ids[0]), "--unhappy", "--category", "nonsense")
    assert bad.exit_code != 0 and "unknown category" in bad.output

    engine = make_engine(load_settings(cfg).database.url)
    with make_sessionmaker(engine)() as session:
        corrections = session.query(m.Correction).all()
        assert len(corrections) == len(ids)
        assert {c.actor for c in corrections} == {"ana"}
        assert all(c.created_at is not None for c in corrections)
        events = session.query(m.Event).filter_by(kind="mention.corrected").all()
        assert len(events) == len(ids)
    engine.dispose()

    res = _invoke(cfg, "train", "--base-limit", "600", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{") : res.output.rindex("}") + 1])
    assert summary["accepted"] is True and summary["corrections"] == len(ids)
    active = json.loads((tmp_path / "models" / "ACTIVE").read_text())
    assert active["version"] == summary["version"]
    # the running classifier switches on its next batch; a fresh load uses it too
    in_use.predict(["hello"])
    assert in_use.version.startswith(summary["version"]) and in_use.version != before
    assert load_classifier(settings).version == in_use.version
    meta = json.loads((tmp_path / "models" / summary["version"] / "meta.json").read_text())
    assert meta["parent"] == "minilm-vader-v2" and meta["corrections"] == len(ids)
    assert "delivery" in meta["cat_labels"]


@pytest.mark.model
def test_regressing_head_is_refused(tmp_path: Path, db_url: str) -> None:
    # Agents (wrongly) flip every label, and their corrections weigh a lot.
    cfg, ids = _setup(tmp_path, db_url, {"correction_weight": 2000.0})
    for mid, text in zip(ids, COMPLAINTS + HAPPY, strict=True):
        flag = "--not-unhappy" if text in COMPLAINTS else "--unhappy"
        assert _invoke(cfg, "label", str(mid), flag, "--by", "mallory").exit_code == 0
    res = _invoke(cfg, "train", "--base-limit", "600")
    assert res.exit_code == 1
    assert "refused" in res.output and "fell from" in res.output
    assert not (tmp_path / "models" / "ACTIVE").exists()


@pytest.mark.model
@pytest.mark.slow
def test_train_can_fine_tune_the_last_encoder_layer(tmp_path: Path, db_url: str) -> None:
    """`listener train --fine-tune`: the last layer learns from corrections; the same
    held-back guard decides; the classifier then runs on the new layer."""
    from classifiers import load_classifier
    from classifiers.minilm import TOP_FILE, base_weights_dir
    from listener.config import load_settings

    cfg, ids = _setup(tmp_path, db_url, {"regression_tolerance": 0.2})
    settings = load_settings(cfg).classifier
    for mid, text in zip(ids, COMPLAINTS + HAPPY, strict=True):
        flag = "--unhappy" if text in COMPLAINTS else "--not-unhappy"
        assert _invoke(cfg, "label", str(mid), flag, "--by", "ana").exit_code == 0
    res = _invoke(cfg, "train", "--fine-tune", "--epochs", "1", "--base-limit", "400", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{") : res.output.rindex("}") + 1])
    assert summary["accepted"] is True
    version_dir = tmp_path / "models" / summary["version"]
    meta = json.loads((version_dir / "meta.json").read_text())
    assert meta["fine_tuned_layer"] is True and "current" in summary
    new_top = version_dir / TOP_FILE
    base_top = base_weights_dir(settings) / TOP_FILE
    assert new_top.is_file() and new_top.read_bytes() != base_top.read_bytes()
    clf = load_classifier(settings)
    assert clf.encoder.top_weights == new_top  # type: ignore[attr-defined]
    assert clf.version.startswith(summary["version"])
    assert len(clf.predict(COMPLAINTS)) == len(COMPLAINTS)


def test_fine_tune_without_corrections_is_a_clear_error(tmp_path: Path) -> None:
    from classifiers import ClassifierSettings
    from listener.errors import ClassifierError
    from listener.learning import train_from_corrections

    settings = ClassifierSettings(models_dir=str(tmp_path))
    with pytest.raises(ClassifierError, match="no corrections"):
        train_from_corrections(settings, None, corrections=[], fine_tune=True)
    assert not any(tmp_path.iterdir())  # nothing was loaded or written
