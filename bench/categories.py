"""Category accuracy on real posts: twcs-dev (the default set) and the airline dev set.

    python bench/categories.py [--json out.json]

* ``../shared/data/twcs-dev``: all 500 labelled tweets (``labels.jsonl``; texts from
  ``inbound.jsonl``, joined by ``tweet_id``) against the default category set, every
  tweet counted (including ``other`` and ``praise``);
* ``../shared/data/airline-dev/Tweets-dev.csv``: the negative tweets with a reason,
  against ``classifiers/airline_categories.yaml`` (a brand's own set), as
  ``listener eval --category-column negativereason`` scores them.

Both are evaluation data: nothing here trains anything.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def twcs(root: Path) -> tuple[list[str], list[str]]:
    texts = {}
    with (root / "twcs-dev" / "inbound.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            texts[row["tweet_id"]] = row["text"]
    gold_texts, gold = [], []
    with (root / "twcs-dev" / "labels.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            gold_texts.append(texts[row["tweet_id"]])
            gold.append(row["category"])
    return gold_texts, gold


def report(gold: list[str], pred: list[str]) -> dict[str, object]:
    per: dict[str, list[bool]] = collections.defaultdict(list)
    for g, p in zip(gold, pred, strict=True):
        per[g].append(g == p)
    predicted = collections.Counter(pred)
    return {
        "n": len(gold),
        "accuracy": round(sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold), 4),
        "per_category": {
            k: {"n": len(v), "accuracy": round(sum(v) / len(v), 3), "predicted": predicted[k]}
            for k, v in sorted(per.items(), key=lambda kv: -len(kv[1]))
        },
    }


def main() -> None:
    from classifiers import ClassifierSettings, load_classifier
    from classifiers.evaluation import evaluate_csv

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--models-dir", default=None)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    root = Path(args.data)
    settings = ClassifierSettings(models_dir=args.models_dir)
    clf = load_classifier(settings)
    texts, gold = twcs(root)
    preds = clf.predict(texts)
    out: dict[str, object] = {
        "model": clf.version,
        "twcs_dev": report(gold, [p.category for p in preds]),
    }
    airline = evaluate_csv(
        settings,
        root / "airline-dev" / "Tweets-dev.csv",
        category_column="negativereason",
        categories_file=ROOT / "classifiers" / "airline_categories.yaml",
    )
    out["airline_dev"] = airline["category"]
    out["airline_unhappy"] = {**airline["unhappy"], "roc_auc": airline["roc_auc"]}
    print(json.dumps(out, indent=1))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
