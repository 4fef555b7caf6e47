"""The trained head: small numpy arrays on top of the encoder's pooled vectors.

* ``unhappy``: logistic regression on [sentiment vector, VADER features],
  then Platt-calibrated on a held-back slice;
* ``sentiment``: 3-class (negative/neutral/positive) logistic regression on
  the same features;
* categories: cosine similarity of the topic vector to one prototype per
  configured category (its description, examples and agents' corrections),
  plus a small bonus per keyword hit.

A head is a directory holding ``head.npz`` and ``meta.json``; inference needs
only numpy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from listener.errors import ClassifierError

LABEL_ORDER = ("negative", "neutral", "positive")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class Head:
    """Arrays of one trained head, plus its metadata."""

    mean: np.ndarray
    scale: np.ndarray
    unhappy_w: np.ndarray
    unhappy_b: float
    platt_a: float
    platt_b: float
    sent_w: np.ndarray  # (3, d)
    sent_b: np.ndarray  # (3,)
    #: Topic vectors of agents' category corrections, and their category names.
    cat_vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    cat_labels: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.meta.get("version", "unversioned"))

    def features(self, sent: np.ndarray, lex: np.ndarray) -> np.ndarray:
        x = np.hstack([sent, lex]).astype(np.float32)
        return (x - self.mean) / self.scale

    def unhappy_logit(self, x: np.ndarray) -> np.ndarray:
        return x @ self.unhappy_w + self.unhappy_b

    def unhappy_proba(self, x: np.ndarray) -> np.ndarray:
        return _sigmoid(self.platt_a * self.unhappy_logit(x) + self.platt_b)

    def sentiment_proba(self, x: np.ndarray) -> np.ndarray:
        return _softmax(x @ self.sent_w.T + self.sent_b)

    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            directory / "head.npz",
            mean=self.mean.astype(np.float32),
            scale=self.scale.astype(np.float32),
            unhappy_w=self.unhappy_w.astype(np.float32),
            unhappy_b=np.float32(self.unhappy_b),
            platt=np.array([self.platt_a, self.platt_b], np.float32),
            sent_w=self.sent_w.astype(np.float32),
            sent_b=self.sent_b.astype(np.float32),
            cat_vectors=self.cat_vectors.astype(np.float16),
        )
        meta = dict(self.meta)
        meta["cat_labels"] = list(self.cat_labels)
        (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory: Path) -> Head:
        directory = Path(directory)
        try:
            arrays = np.load(directory / "head.npz")
            meta = json.loads((directory / "meta.json").read_text())
        except (OSError, ValueError) as exc:
            raise ClassifierError(f"cannot read classifier head in {directory}: {exc}") from exc
        return cls(
            mean=arrays["mean"],
            scale=arrays["scale"],
            unhappy_w=arrays["unhappy_w"],
            unhappy_b=float(arrays["unhappy_b"]),
            platt_a=float(arrays["platt"][0]),
            platt_b=float(arrays["platt"][1]),
            sent_w=arrays["sent_w"],
            sent_b=arrays["sent_b"],
            cat_vectors=arrays["cat_vectors"].astype(np.float32),
            cat_labels=list(meta.pop("cat_labels", [])),
            meta=meta,
        )
