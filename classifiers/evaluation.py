"""``listener eval``: run a classifier over a labelled CSV and compute the metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from classifiers.data import load_csv
from classifiers.metrics import evaluate
from classifiers.settings import CategorySpec, ClassifierSettings, load_categories_yaml
from listener.errors import ClassifierError


def load_category_file(path: Path) -> tuple[list[CategorySpec], str, dict[str, str]]:
    """Read a categories YAML: ``categories``, ``fallback_category``, ``eval_mapping``."""
    return load_categories_yaml(path)


def evaluate_csv(
    settings: ClassifierSettings,
    path: Path,
    *,
    text_column: str = "text",
    label_column: str = "airline_sentiment",
    category_column: str | None = None,
    categories_file: Path | None = None,
    id_column: str | None = "tweet_id",
    limit: int | None = None,
    classifier: Any = None,
) -> dict[str, Any]:
    from classifiers import load_classifier

    mapping: dict[str, str] = {}
    if categories_file is not None:
        specs, fallback, mapping = load_category_file(categories_file)
        settings = settings.model_copy(update={"categories": specs, "fallback_category": fallback})
    rows = load_csv(path, text_column, label_column, category_column, id_column)
    if limit is not None:
        rows = rows[:limit]
    unknown = sorted({r.label for r in rows} - {"negative", "neutral", "positive"})
    if unknown:
        raise ClassifierError(
            f"{path}: {label_column} must be negative/neutral/positive; found {', '.join(unknown)}"
        )
    clf = classifier or load_classifier(settings)
    start = time.perf_counter()
    preds = clf.predict([r.text for r in rows])
    secs = time.perf_counter() - start
    gold_cats = None
    if category_column:
        gold_cats = [mapping.get(r.category, r.category) if r.category else None for r in rows]
    report = evaluate(
        [r.label for r in rows],
        [p.label for p in preds],
        [p.unhappy_score for p in preds],
        [p.unhappy for p in preds],
        gold_cats,
        [p.category for p in preds] if category_column else None,
    )
    report["model_version"] = getattr(clf, "version", "")
    report["threshold"] = settings.threshold
    report["data"] = str(path)
    report["seconds"] = round(secs, 2)
    report["texts_per_second"] = round(len(rows) / secs, 1) if secs else None
    return report


def format_report(r: dict[str, Any]) -> str:
    u = r["unhappy"]
    lines = [
        f"model {r['model_version']} on {r['data']} ({r['n']} texts, "
        f"{r['unhappy_rate']:.1%} unhappy; {r['texts_per_second']} texts/s)",
        f"unhappy (threshold {r['threshold']}): precision {u['precision']:.3f}  "
        f"recall {u['recall']:.3f}  F1 {u['f1']:.3f}   ROC AUC {r['roc_auc']:.3f}",
        f"3-class: macro-F1 {r['macro_f1']:.3f}  accuracy {r['accuracy']:.3f}",
        "confusion matrix (rows gold, columns predicted):",
        "            " + "".join(f"{lab:>10}" for lab in r["confusion_matrix"]["labels"]),
    ]
    cm = r["confusion_matrix"]
    for lab, row in zip(cm["labels"], cm["rows_gold_cols_pred"], strict=True):
        lines.append(f"  {lab:>10}" + "".join(f"{v:>10}" for v in row))
    cal = r["calibration"]
    lines.append(f"calibration: ECE {cal['ece']:.3f}")
    lines.append("  score bin     n   mean score  unhappy rate")
    for row in cal["table"]:
        if row["n"]:
            lines.append(
                f"  {row['bin']:>9} {row['n']:>5}   {row['mean_score']:>10.3f}  "
                f"{row['unhappy_rate']:>12.3f}"
            )
    if "category" in r:
        c = r["category"]
        lines.append(
            f"category accuracy: {c['accuracy']:.3f} on {c['n']} texts with a gold category"
        )
        for name, v in c["per_category"].items():
            lines.append(f"  {name:<22} n={v['n']:<5} accuracy {v['accuracy']:.3f}")
    return "\n".join(lines)
