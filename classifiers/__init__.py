"""Listener's classifiers: sentiment, the unhappy flag, the problem category.

``load_classifier(settings)`` returns the configured :class:`Classifier`.
Heavy libraries (torch, transformers) are imported lazily, inside the
implementations that need them.
"""

from __future__ import annotations

from classifiers.base import CIRCUMSTANCES, LABELS, Classifier, Prediction
from classifiers.progress import Progress
from classifiers.settings import CategorySpec, ClassifierSettings

__all__ = [
    "CIRCUMSTANCES",
    "LABELS",
    "CategorySpec",
    "Classifier",
    "ClassifierSettings",
    "Prediction",
    "load_classifier",
]


def load_classifier(settings: ClassifierSettings, progress: Progress | None = None) -> Classifier:
    """Build the classifier named by ``settings.kind`` (``progress`` reports a slow first load)."""
    if settings.kind == "lexicon":
        from classifiers.lexicon import LexiconClassifier

        return LexiconClassifier(settings)
    if settings.kind == "minilm":
        from classifiers.minilm import MiniLMClassifier

        return MiniLMClassifier(settings, progress=progress)
    if settings.kind == "hf":
        from classifiers.hf import HFClassifier

        return HFClassifier(settings)
    raise ValueError(f"unknown classifier kind {settings.kind!r}")
