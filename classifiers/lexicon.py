"""The fast ``lexicon`` classifier: VADER sentiment plus keyword categories.

No model files, no torch.  VADER alone misses complaints stated as plain
facts ("my package never arrived" scores neutral), so the unhappy score also
counts problem-category keyword hits: a post that names a problem and is not
clearly positive leans unhappy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from classifiers.base import Label, Prediction
from classifiers.circumstances import detect_circumstances
from classifiers.settings import ClassifierSettings

_NON_PROBLEM = {"praise", "other"}


def _keyword_pattern(keyword: str) -> re.Pattern[str]:
    escaped = re.escape(keyword.strip())
    return re.compile(rf"(?<!\w){escaped}(?!\w)", re.IGNORECASE)


def _any_pattern(keywords: list[str]) -> re.Pattern[str]:
    """Matches where any of ``keywords`` does (the alternation backtracks through every
    keyword at each position, so it finds a match exactly when one keyword's own pattern
    would)."""
    if not keywords:
        return re.compile(r"(?!)")
    alternatives = "|".join(re.escape(k.strip()) for k in keywords)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=1)
def _analyzer():  # type: ignore[no-untyped-def]
    """VADER (:class:`classifiers.vader.FastVader`: the same scores, in half the time,
    for the release its rules were copied from; VADER's own class for any other)."""
    from importlib.metadata import version

    if version("vaderSentiment") != "3.3.2":  # pragma: no cover - the last release
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        return SentimentIntensityAnalyzer()
    from classifiers.vader import FastVader

    return FastVader()


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class LexiconClassifier:
    """VADER + keyword rules behind the :class:`classifiers.Classifier` protocol."""

    version = "lexicon-vader-1"
    #: pure Python: inference holds the GIL, so a thread beside the storing one gains
    #: nothing (listener.classified classifies its parts before storing instead)
    releases_gil = False

    def __init__(self, settings: ClassifierSettings) -> None:
        self.settings = settings
        self._patterns = [
            (spec.name, [_keyword_pattern(k) for k in spec.keywords if k.strip()])
            for spec in settings.categories
        ]
        # one search per category first: a text that names none of its keywords (most
        # texts, for most categories) skips the keyword-by-keyword count
        self._any = [
            _any_pattern([k for k in s.keywords if k.strip()]) for s in settings.categories
        ]

    def _categorise(self, text: str, label: Label) -> tuple[str, float, int]:
        """Return (category, score, problem keyword hits)."""
        hits = {
            name: sum(1 for p in pats if p.search(text)) if any_.search(text) else 0
            for (name, pats), any_ in zip(self._patterns, self._any, strict=True)
        }
        problem_hits = sum(v for k, v in hits.items() if k not in _NON_PROBLEM)
        if label == "positive" and hits.get("praise", 0) and problem_hits <= hits["praise"]:
            best = "praise"
        else:
            candidates = {
                k: v for k, v in hits.items() if v and (k != "praise" or label == "positive")
            }
            if not candidates:
                fallback = self.settings.fallback_category
                return fallback, 0.5, 0
            best = max(candidates, key=lambda k: candidates[k])
        total = sum(hits.values()) or 1
        score = (hits[best] + 1) / (total + 2)
        return best, min(0.99, 0.4 + score), problem_hits

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        analyzer = _analyzer()
        out: list[Prediction] = []
        for text in texts:
            scores = analyzer.polarity_scores(text or "")
            compound = float(scores["compound"])
            label: Label
            if compound >= 0.05:
                label = "positive"
            elif compound <= -0.05:
                label = "negative"
            else:
                label = "neutral"
            category, category_score, problem_hits = self._categorise(text or "", label)
            # Problem words push toward unhappy unless the post is clearly positive.
            cue = min(problem_hits, 3) * (0.9 if compound < 0.5 else 0.2)
            unhappy_score = _sigmoid(-4.0 * compound + cue - 1.2)
            if label == "neutral" and unhappy_score >= self.settings.threshold:
                label = "negative"
            total = scores["neg"] + scores["neu"] + scores["pos"] or 1.0
            probabilities = {
                "negative": scores["neg"] / total,
                "neutral": scores["neu"] / total,
                "positive": scores["pos"] / total,
            }
            out.append(
                Prediction(
                    label=label,
                    probabilities=probabilities,
                    unhappy_score=unhappy_score,
                    unhappy=unhappy_score >= self.settings.threshold,
                    category=category,
                    category_score=category_score,
                    circumstances=detect_circumstances(text or ""),
                    model_version=self.version,
                )
            )
        return out
