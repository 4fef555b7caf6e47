"""Simulated learning from agents: feed N dev-set labels as corrections, score the rest.

    python bench/corrections.py [--n 1000] [--seed 7] [--data CSV] [--fine-tune [--epochs 2]]

The dev labels are used only here, as simulated corrections in a throw-away
models directory; they never reach the committed weights.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from classifiers.data import load_csv
    from classifiers.evaluation import load_category_file
    from classifiers.metrics import prf, roc_auc
    from classifiers.minilm import MiniLMClassifier
    from classifiers.settings import ClassifierSettings
    from classifiers.training import CorrectionExample
    from listener.learning import train_from_corrections

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/airline-dev/Tweets-dev.csv"))
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--weight", type=float, default=None)
    ap.add_argument("--cache", default=None, help="feature cache (default: the user's cache)")
    ap.add_argument("--fine-tune", action="store_true", help="also fine-tune the last layer")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()

    rows = load_csv(Path(args.data), category_column="negativereason")
    specs, fallback, mapping = load_category_file(ROOT / "classifiers/airline_categories.yaml")
    rng = random.Random(args.seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    corr_idx, test_idx = order[: args.n], order[args.n :]
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        cache = Path(args.cache) if args.cache else ClassifierSettings().models_path / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        (models / "cache").symlink_to(cache.resolve(), target_is_directory=True)
        upd = {"models_dir": str(models), "categories": specs, "fallback_category": fallback}
        if args.weight:
            upd["correction_weight"] = args.weight
        settings = ClassifierSettings().model_copy(update=upd)
        clf = MiniLMClassifier(settings)
        test = [rows[i] for i in test_idx]
        y = [r.label == "negative" for r in test]

        def score(c: MiniLMClassifier) -> dict[str, float]:
            preds = c.predict([r.text for r in test])
            cat = [
                (mapping[r.category], p.category)
                for r, p in zip(test, preds, strict=True)
                if r.category
            ]
            out = prf(y, [p.unhappy for p in preds])
            out["auc"] = roc_auc(y, [p.unhappy_score for p in preds])
            out["category_accuracy"] = sum(a == b for a, b in cat) / max(len(cat), 1)
            return {k: round(v, 4) for k, v in out.items()}

        before = score(clf)
        corrections = [
            CorrectionExample(
                key=rows[i].id,
                text=rows[i].text,
                unhappy=rows[i].label == "negative",
                category=mapping.get(rows[i].category) if rows[i].category else None,
            )
            for i in corr_idx
        ]
        start = time.perf_counter()
        result = train_from_corrections(
            settings,
            None,
            corrections=corrections,
            classifier=clf,
            fine_tune=args.fine_tune,
            epochs=args.epochs,
        )
        seconds = time.perf_counter() - start
        after = score(MiniLMClassifier(settings))
        print(
            json.dumps(
                {
                    "corrections": args.n,
                    "fine_tune": args.fine_tune,
                    "train_seconds": round(seconds, 1),
                    "test_texts": len(test),
                    "before": before,
                    "after": after,
                    "accepted": result.accepted,
                    "reason": result.reason,
                    "heldback_new": result.new_metrics,
                    "heldback_current": result.current_metrics,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
