"""Problem category per post: the configured category it is closest to in meaning.

Each configured category (name, description, examples) becomes a prototype:
the mean of the normalised topic vectors of its texts and of the posts agents
filed under it (``listener label --category``).  A post's score for a category
is its cosine similarity to the prototype plus a small bonus per keyword hit.

The decision also uses what the head already knows about the post
(:func:`decide`): an unhappy post is never ``praise``; a post that is not
unhappy is ``praise`` only when it is positive and close to the praise
examples, and gets a problem category only when it is clearly about one (a
question about an outage, say) — otherwise it is the fallback (``other``):
thanks after help, "DM sent", banter.  Brand-defined categories are problem
categories like the built-in ones, so they need no retraining.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from classifiers.settings import CategorySpec
from classifiers.text import lower_matches_ignorecase

KEYWORD_BONUS = 0.08
MAX_KEYWORD_HITS = 3
TEMPERATURE = 0.05
PRAISE = "praise"
#: A post that is not unhappy is praise only when positive and at least this close to
#: the praise prototype (score with keyword bonus), ...
PRAISE_MIN = 0.8
#: ... and gets a problem category only when at least this close to it; otherwise the
#: fallback.  Both chosen on the development sets (docs/model-card.md).
PROBLEM_MIN = 0.75


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


_WORD = re.compile(r"\w+")


class KeywordIndex:
    """Every category's keyword hits in one pass over a text's words.

    The same count as :func:`_hits` per category (``tests/test_categories.py``
    checks it on real tweets), without a regex scan per category: keywords are
    whole words at both ends, so a match starts where a word starts and that word
    is the keyword's first word.  Each category's matches are taken as its
    alternation takes them: leftmost, longest first, not overlapping.  Used when
    every keyword is ASCII and starts and ends with a word character (else None).
    """

    def __init__(self, keywords: Sequence[Sequence[str]]) -> None:
        self.size = len(keywords)
        first: dict[str, list[tuple[int, str]]] = {}
        for j, words in enumerate(keywords):
            for w in sorted({k.strip().lower() for k in words if k.strip()}, key=len, reverse=True):
                first.setdefault(_WORD.match(w).group(0), []).append((j, w))  # type: ignore[union-attr]
        self.first = first

    @classmethod
    def build(cls, keywords: Sequence[Sequence[str]]) -> KeywordIndex | None:
        words = [k.strip().lower() for ws in keywords for k in ws if k.strip()]
        if not all(w.isascii() and _WORD.fullmatch(w[0]) and _WORD.fullmatch(w[-1]) for w in words):
            return None
        return cls(keywords)

    def hits(self, text: str) -> list[int] | None:
        """Distinct keywords found per category; None when the text needs the regexes."""
        if not lower_matches_ignorecase(text):
            return None
        first = self.first
        low = text.lower()
        found: list[set[str]] | None = None
        resume = [0] * self.size  # where each category's next match may start
        for m in _WORD.finditer(low):
            candidates = first.get(m.group(0))
            if candidates is None:
                continue
            start = m.start()
            for j, w in candidates:  # per category, longest keyword first
                if start < resume[j] or not low.startswith(w, start):
                    continue
                end = start + len(w)
                if end < len(low) and _WORD.match(low, end):
                    continue
                if found is None:
                    found = [set() for _ in range(self.size)]
                found[j].add(w)
                resume[j] = end
        return [0] * self.size if found is None else [len(f) for f in found]


def category_texts(spec: CategorySpec) -> list[str]:
    """The texts that define a category: its description, then its examples."""
    own = [f"{spec.name.replace('_', ' ')}: {spec.description}"] if spec.description else []
    return [t for t in [*own, *spec.examples] if t]


def decide(
    names: Sequence[str],
    scores: np.ndarray,
    unhappy: bool,
    positive: bool,
    fallback: str,
) -> int | None:
    """Index of the chosen category for one post, or None for the fallback.

    ``scores`` is the post's score per category (similarity + keyword bonus; ``-inf``
    where a category has no texts).  Pure: the reasons are in the module docstring.
    """
    praise = names.index(PRAISE) if PRAISE in names else None
    other = names.index(fallback) if fallback in names else None
    problems = [k for k in range(len(names)) if k not in (praise, other)]
    if unhappy:
        allowed = [k for k in range(len(names)) if k != praise]
        best = max(allowed, key=lambda k: scores[k]) if allowed else None
        return None if best is None or best == other or not np.isfinite(scores[best]) else best
    best = max(problems, key=lambda k: scores[k]) if problems else None
    best_score = scores[best] if best is not None else -np.inf
    if (
        praise is not None
        and positive
        and scores[praise] >= PRAISE_MIN
        and scores[praise] >= best_score
    ):
        return praise
    if (
        best is not None
        and best_score >= PROBLEM_MIN
        and (other is None or best_score >= scores[other])
    ):
        return best
    return None


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
        self.index = KeywordIndex.build([s.keywords for s in specs])
        texts: list[str] = []
        owner: list[int] = []
        for i, s in enumerate(specs):
            own = category_texts(s)
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
        index = self.index
        for row, text in enumerate(texts):
            counts = index.hits(text) if index is not None else None
            if counts is None:
                counts = [_hits(pattern, text) for pattern in self.patterns]
            for j, n in enumerate(counts):
                if n:
                    bonus[row, j] = KEYWORD_BONUS * min(n, MAX_KEYWORD_HITS)
        return bonus

    def assign(
        self,
        texts: Sequence[str],
        topic: np.ndarray,
        unhappy: Sequence[bool],
        bonus: np.ndarray | None = None,
        positive: Sequence[bool] | None = None,
    ) -> list[tuple[str, float]]:
        """Category and confidence per text; ``bonus`` is :meth:`keyword_bonus` if computed,
        ``positive`` whether the post's sentiment label is positive (default: not unhappy)."""
        if not self.names:
            return [(self.fallback, 0.0)] * len(texts)
        sims = _normalise(topic.astype(np.float32)) @ self.prototypes.T
        scores = sims + (self.keyword_bonus(texts) if bonus is None else bonus)
        scores[:, ~self.has_proto] = -np.inf
        pos = [not u for u in unhappy] if positive is None else positive
        if np.isnan(scores).any():  # the row-by-row rules say what NaN means
            return self._assign_rows(scores, unhappy, pos)
        return self._assign_batch(scores, np.asarray(unhappy, bool), np.asarray(pos, bool))

    def _assign_rows(
        self, scores: np.ndarray, unhappy: Sequence[bool], pos: Sequence[bool]
    ) -> list[tuple[str, float]]:
        """:func:`decide` and the confidence, one row at a time."""
        fb = self.names.index(self.fallback) if self.fallback in self.names else None
        out: list[tuple[str, float]] = []
        for row in range(len(scores)):
            s = scores[row]
            choice = decide(self.names, s, bool(unhappy[row]), bool(pos[row]), self.fallback)
            if choice is None:
                choice = fb
            if choice is None:
                out.append((self.fallback, 0.0))
                continue
            allowed = np.isfinite(s)
            if unhappy[row] and PRAISE in self.names:
                allowed[self.names.index(PRAISE)] = False
            z = np.where(allowed, s, -1e9)
            p = np.exp((z - z.max()) / TEMPERATURE)
            out.append((self.names[choice], float(p[choice] / p.sum())))
        return out

    def _assign_batch(
        self, scores: np.ndarray, unhappy: np.ndarray, pos: np.ndarray
    ) -> list[tuple[str, float]]:
        """:meth:`_assign_rows` for a whole batch at once: the same choices (first of
        equal scores, as ``max`` takes them) and the same float32 confidences."""
        names, n, k = self.names, len(scores), len(self.names)
        praise = names.index(PRAISE) if PRAISE in names else None
        other = names.index(self.fallback) if self.fallback in names else None
        cols = np.arange(k)
        # unhappy: the best of every category but praise; None if it is the fallback or -inf
        not_praise = cols != praise
        masked = np.where(not_praise, scores, -np.inf)
        best_u = masked.argmax(axis=1) if not_praise.any() else np.full(n, -1)
        best_u_score = masked[np.arange(n), best_u] if not_praise.any() else np.full(n, -np.inf)
        ok_u = np.isfinite(best_u_score) & (best_u != other)
        # not unhappy: praise when positive and close, else a clear problem, else None
        problems = not_praise & (cols != other)
        if problems.any():
            masked = np.where(problems, scores, -np.inf)
            best_p = masked.argmax(axis=1)
            best_p_score = masked[np.arange(n), best_p]
        else:
            best_p, best_p_score = np.full(n, -1), np.full(n, -np.inf, np.float32)
        is_praise = np.zeros(n, bool)
        if praise is not None:
            sp = scores[:, praise]
            is_praise = pos & (sp >= PRAISE_MIN) & (sp >= best_p_score)
        is_problem = best_p_score >= PROBLEM_MIN
        if other is not None:
            is_problem &= best_p_score >= scores[:, other]
        fb = -1 if other is None else other
        choice = np.where(
            unhappy,
            np.where(ok_u, best_u, fb),
            np.where(
                is_praise, praise if praise is not None else -1, np.where(is_problem, best_p, fb)
            ),
        )
        allowed = np.isfinite(scores)
        if praise is not None:
            allowed[unhappy, praise] = False
        z = np.where(allowed, scores, -1e9)
        p = np.exp((z - z.max(axis=1, keepdims=True)) / TEMPERATURE)
        rows = np.arange(n)
        safe = np.maximum(choice, 0)
        conf = (p[rows, safe] / p.sum(axis=1)).tolist()
        return [
            (names[c], conf[i]) if c >= 0 else (self.fallback, 0.0)
            for i, c in enumerate(choice.tolist())
        ]
