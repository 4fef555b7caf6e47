"""Problem category per post: nearest category prototype in embedding space.

Each configured category (name, description, examples) becomes a prototype:
the mean of the normalised topic vectors of its texts and of the posts agents
filed under it (``listener label --category``).  A post's score for a category
is its cosine similarity to the prototype plus a small bonus per keyword hit.
Unhappy posts are never filed as ``praise``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from classifiers.settings import CategorySpec

KEYWORD_BONUS = 0.08
MAX_KEYWORD_HITS = 3
TEMPERATURE = 0.05
MIN_SIMILARITY = 0.1
PRAISE = "praise"


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _keywords_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """One alternation per category (longest first), whole words, case-insensitive."""
    words = sorted({k.strip().lower() for k in keywords if k.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternation = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.I)


def _hits(pattern: re.Pattern[str] | None, text: str) -> int:
    """How many different keywords of the category occur in ``text``."""
    if pattern is None:
        return 0
    return len({m.group(0).lower() for m in pattern.finditer(text)})


class CategoryModel:
    """Prototype + keyword category scorer over topic vectors."""

    def __init__(
        self,
        specs: Sequence[CategorySpec],
        embed: Callable[[Sequence[str]], np.ndarray],
        fallback: str,
        extra_vectors: np.ndarray | None = None,
        extra_labels: Sequence[str] = (),
    ) -> None:
        self.names = [s.name for s in specs]
        self.fallback = fallback
        self.patterns = [_keywords_pattern(s.keywords) for s in specs]
        texts: list[str] = []
        owner: list[int] = []
        for i, s in enumerate(specs):
            own = [t for t in ([_describe(s)] if s.description else []) + list(s.examples) if t]
            texts += own
            owner += [i] * len(own)
        vecs = _normalise(embed(texts)) if texts else np.zeros((0, 1), np.float32)
        groups: list[list[np.ndarray]] = [[] for _ in specs]
        for v, i in zip(vecs, owner, strict=True):
            groups[i].append(v)
        if extra_vectors is not None and len(extra_labels):
            index = {n: i for i, n in enumerate(self.names)}
            for v, lab in zip(_normalise(extra_vectors), extra_labels, strict=True):
                if lab in index:
                    groups[index[lab]].append(v)
        dim = (
            vecs.shape[1]
            if len(vecs)
            else (extra_vectors.shape[1] if extra_vectors is not None and extra_vectors.size else 1)
        )
        self.has_proto = np.array([bool(g) for g in groups])
        self.prototypes = np.stack(
            [_normalise(np.mean(g, axis=0)) if g else np.zeros(dim, np.float32) for g in groups]
        ).astype(np.float32)

    def keyword_bonus(self, texts: Sequence[str]) -> np.ndarray:
        """Per text and category, the score bonus its keywords earn (shape (n, k))."""
        bonus = np.zeros((len(texts), len(self.names)), np.float32)
        for row, text in enumerate(texts):
            for j, pattern in enumerate(self.patterns):
                bonus[row, j] = KEYWORD_BONUS * min(_hits(pattern, text), MAX_KEYWORD_HITS)
        return bonus

    def assign(
        self,
        texts: Sequence[str],
        topic: np.ndarray,
        unhappy: Sequence[bool],
        bonus: np.ndarray | None = None,
    ) -> list[tuple[str, float]]:
        """Category and confidence per text; ``bonus`` is :meth:`keyword_bonus` if computed."""
        if not self.names:
            return [(self.fallback, 0.0)] * len(texts)
        sims = _normalise(topic.astype(np.float32)) @ self.prototypes.T
        sims[:, ~self.has_proto] = -1.0
        scores = sims + (self.keyword_bonus(texts) if bonus is None else bonus)
        out: list[tuple[str, float]] = []
        for row in range(len(texts)):
            s = scores[row]
            if unhappy[row] and PRAISE in self.names:
                s[self.names.index(PRAISE)] = -np.inf
            best = int(np.argmax(s))
            if sims[row, best] < MIN_SIMILARITY:
                out.append((self.fallback, 0.0))
                continue
            finite = np.where(np.isfinite(s), s, -1e9)
            p = np.exp((finite - finite.max()) / TEMPERATURE)
            out.append((self.names[best], float(p[best] / p.sum())))
        return out


def _describe(spec: CategorySpec) -> str:
    return f"{spec.name.replace('_', ' ')}: {spec.description}"
