"""Evaluation metrics in plain numpy (no sklearn needed at run time)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np

from classifiers.head import LABEL_ORDER

Flags: TypeAlias = Sequence[bool] | np.ndarray
Scores: TypeAlias = Sequence[float] | np.ndarray


def roc_auc(y: Flags, score: Scores) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties averaged)."""
    y_arr = np.asarray(y, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y_arr.sum()), int((~y_arr).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y_arr].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def prf(y: Flags, pred: Flags) -> dict[str, float]:
    y_arr, p = np.asarray(y, bool), np.asarray(pred, bool)
    tp = float((y_arr & p).sum())
    precision = tp / max(float(p.sum()), 1.0)
    recall = tp / max(float(y_arr.sum()), 1.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def reliability(y: Flags, score: Scores, bins: int = 10) -> dict[str, Any]:
    """Reliability table (equal-width bins) and expected calibration error."""
    y_arr = np.asarray(y, dtype=float)
    s = np.asarray(score, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        m = (s >= lo) & ((s < hi) if hi < 1 else (s <= hi))
        n = int(m.sum())
        if not n:
            rows.append(
                {"bin": f"{lo:.1f}-{hi:.1f}", "n": 0, "mean_score": None, "unhappy_rate": None}
            )
            continue
        conf, acc = float(s[m].mean()), float(y_arr[m].mean())
        ece += n / len(s) * abs(conf - acc)
        rows.append(
            {
                "bin": f"{lo:.1f}-{hi:.1f}",
                "n": n,
                "mean_score": round(conf, 4),
                "unhappy_rate": round(acc, 4),
            }
        )
    return {"ece": ece, "table": rows}


def evaluate(
    gold_labels: Sequence[str],
    pred_labels: Sequence[str],
    unhappy_scores: Sequence[float],
    unhappy_pred: Sequence[bool],
    gold_categories: Sequence[str | None] | None = None,
    pred_categories: Sequence[str] | None = None,
) -> dict[str, Any]:
    """All the numbers ``listener eval`` prints. Unhappy = gold label 'negative'."""
    gold = [g.lower() for g in gold_labels]
    y = np.array([g == "negative" for g in gold])
    conf = np.zeros((3, 3), dtype=int)
    for g, p in zip(gold, pred_labels, strict=True):
        if g in LABEL_ORDER:
            conf[LABEL_ORDER.index(g), LABEL_ORDER.index(p)] += 1
    f1s = []
    for k in range(3):
        tp = conf[k, k]
        prec = tp / max(conf[:, k].sum(), 1)
        rec = tp / max(conf[k, :].sum(), 1)
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    out: dict[str, Any] = {
        "n": len(gold),
        "unhappy_rate": float(y.mean()) if len(y) else float("nan"),
        "macro_f1": float(np.mean(f1s)),
        "accuracy": float(np.trace(conf) / max(conf.sum(), 1)),
        "unhappy": prf(y, unhappy_pred),
        "roc_auc": roc_auc(y, unhappy_scores),
        "confusion_matrix": {
            "labels": list(LABEL_ORDER),
            "rows_gold_cols_pred": conf.tolist(),
        },
        "calibration": reliability(y, unhappy_scores),
    }
    if gold_categories is not None and pred_categories is not None:
        pairs = [(g, p) for g, p in zip(gold_categories, pred_categories, strict=True) if g]
        per: dict[str, list[int]] = {}
        for g, p in pairs:
            per.setdefault(g, [0, 0])
            per[g][0] += int(g == p)
            per[g][1] += 1
        out["category"] = {
            "n": len(pairs),
            "accuracy": (sum(g == p for g, p in pairs) / len(pairs)) if pairs else float("nan"),
            "per_category": {
                k: {"n": v[1], "accuracy": v[0] / v[1]} for k, v in sorted(per.items())
            },
        }
    return out
