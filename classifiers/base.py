"""The one interface every classifier implements.

A classifier turns texts into :class:`Prediction` objects, in input order,
batched.  It is pure with respect to the database: the pipeline decides what
to classify and stores the results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Label = Literal["negative", "neutral", "positive"]
LABELS: tuple[Label, ...] = ("negative", "neutral", "positive")

#: Special circumstances recovery must know about (see ``classifiers.circumstances``).
CIRCUMSTANCES: tuple[str, ...] = ("bereavement", "event_deadline", "child", "illness")


@dataclass(frozen=True)
class Prediction:
    """What a classifier says about one text."""

    label: Label
    probabilities: dict[str, float]
    unhappy_score: float
    unhappy: bool
    category: str
    category_score: float
    circumstances: tuple[str, ...] = field(default=())
    model_version: str = ""

    def to_contract(self) -> dict[str, object]:
        """The stable JSON object ``listener classify`` prints for one input."""
        return {
            "label": self.label,
            "unhappy": self.unhappy,
            "unhappy_score": round(float(self.unhappy_score), 6),
            "category": self.category,
            "category_score": round(float(self.category_score), 6),
        }


@runtime_checkable
class Classifier(Protocol):
    """Batched text classifier."""

    #: A string that identifies the model and its weights (stored with each classification).
    version: str

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify ``texts``; returns one prediction per text, in order."""
        ...


# A classifier may also say ``releases_gil = False`` (a class attribute): its ``predict``
# is pure Python and holds the GIL throughout, so a large batch's parts are classified
# before storing rather than on a thread beside it (listener.classified).  Without it a
# classifier is taken to release the GIL (torch does), and the two overlap.
