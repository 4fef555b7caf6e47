"""`listener eval`: metrics, the categories file, the CLI, and the dev-set floors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from classifiers.evaluation import evaluate_csv, load_category_file
from classifiers.metrics import evaluate, prf, reliability, roc_auc
from classifiers.settings import ClassifierSettings
from listener.cli import cli

ROOT = Path(__file__).resolve().parent.parent
AIRLINE = ROOT / "classifiers" / "airline_categories.yaml"


def test_roc_auc_and_prf() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    m = prf([1, 1, 0, 0], [1, 0, 1, 0])
    assert m == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_reliability_perfectly_calibrated() -> None:
    scores = [0.05] * 20 + [0.85] * 20
    y = [False] * 19 + [True] + [True] * 17 + [False] * 3
    r = reliability(y, scores)
    assert r["ece"] == pytest.approx(0.0, abs=1e-9)
    assert sum(row["n"] for row in r["table"]) == 40


def test_evaluate_confusion_and_categories() -> None:
    r = evaluate(
        ["negative", "neutral", "positive", "negative"],
        ["negative", "negative", "positive", "neutral"],
        [0.9, 0.6, 0.1, 0.4],
        [True, True, False, False],
        ["late", None, None, "lost"],
        ["late", "other", "praise", "late"],
    )
    assert r["confusion_matrix"]["rows_gold_cols_pred"] == [[1, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert r["accuracy"] == pytest.approx(0.5)
    assert r["unhappy"]["precision"] == pytest.approx(0.5)
    assert r["category"]["n"] == 2 and r["category"]["accuracy"] == pytest.approx(0.5)


def test_airline_category_file_is_ours_and_consistent() -> None:
    specs, fallback, mapping = load_category_file(AIRLINE)
    names = {s.name for s in specs}
    assert fallback in names and set(mapping.values()) <= names
    assert all(s.description for s in specs if s.name != "other")


def _write_csv(path: Path) -> Path:
    rows = [
        ("1", "negative", "Late Flight", "@air my flight is delayed 3 hours, no updates at all"),
        ("2", "positive", "", "@air thanks, the crew was wonderful!"),
        ("3", "neutral", "", "@air do you fly to Denver on Sundays?"),
        ("3", "neutral", "", "duplicate id is dropped"),
        ("4", "negative", "Lost Luggage", "@air you lost my bag and nobody can tell me where"),
    ]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["tweet_id", "airline_sentiment", "negativereason", "text"])
        w.writerows(rows)
    return path


def test_eval_cli_json_lexicon(tmp_path: Path) -> None:
    data = _write_csv(tmp_path / "tiny.csv")
    res = CliRunner().invoke(
        cli,
        [
            "eval",
            "--data",
            str(data),
            "--kind",
            "lexicon",
            "--category-column",
            "negativereason",
            "--categories",
            str(AIRLINE),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["n"] == 4
    for key in ("macro_f1", "accuracy", "unhappy", "roc_auc", "confusion_matrix", "calibration"):
        assert key in report
    assert report["category"]["n"] == 2
    text = CliRunner().invoke(cli, ["eval", "--data", str(data), "--kind", "lexicon"])
    assert text.exit_code == 0 and "ROC AUC" in text.output and "confusion matrix" in text.output


@pytest.mark.model
@pytest.mark.slow
def test_dev_set_floors(shared_data: Path, tmp_path: Path) -> None:
    """The default model out of the box on the airline dev set (evaluation only)."""
    report = evaluate_csv(
        ClassifierSettings(models_dir=str(tmp_path / "models")),
        shared_data / "airline-dev" / "Tweets-dev.csv",
        category_column="negativereason",
        categories_file=AIRLINE,
    )
    assert report["n"] == 3621
    assert report["unhappy"]["f1"] >= 0.80
    assert report["roc_auc"] >= 0.88
    assert report["category"]["accuracy"] >= 0.40
    assert report["calibration"]["ece"] < 0.2
