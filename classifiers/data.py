"""Loading the training data (VADER's human-rated sets) and evaluation CSVs."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from listener.errors import ClassifierError

#: VADER ground-truth files: tab-separated id, mean rating (-4..+4), text.
VADER_FILES = (
    "tweets_GroundTruth.txt",
    "movieReviewSnippets_GroundTruth.txt",
    "amazonReviewSnippets_GroundTruth.txt",
    "nytEditorialSnippets_GroundTruth.txt",
)

#: Mean ratings at or below this are "negative" (unhappy); at or above +this "positive".
NEGATIVE_AT = -0.5
POSITIVE_AT = 0.5


@dataclass(frozen=True)
class Example:
    """One training text: its text, 3-class label, unhappy flag and a rating in -1..1."""

    text: str
    label: str
    unhappy: bool
    rating: float
    source: str = ""


def label_for_rating(rating: float) -> str:
    if rating <= NEGATIVE_AT:
        return "negative"
    if rating >= POSITIVE_AT:
        return "positive"
    return "neutral"


def load_vader(directory: Path) -> list[Example]:
    """Read every ``*_GroundTruth.txt`` in ``directory`` (CRLF, tab-separated)."""
    directory = Path(directory)
    out: list[Example] = []
    found = False
    for name in VADER_FILES:
        path = directory / name
        if not path.is_file():
            continue
        found = True
        source = name.split("_")[0]
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            for line in fh:
                parts = line.rstrip("\r\n").split("\t", 2)
                if len(parts) != 3:
                    continue
                try:
                    rating = float(parts[1])
                except ValueError:
                    continue
                text = parts[2].strip()
                if not text:
                    continue
                label = label_for_rating(rating)
                out.append(Example(text, label, label == "negative", rating / 4.0, source))
    if not found:
        raise ClassifierError(f"no VADER *_GroundTruth.txt files found in {directory}")
    return out


@dataclass(frozen=True)
class LabelledRow:
    """One evaluation row: id, text, gold label and optional gold category."""

    id: str
    text: str
    label: str
    category: str | None


def load_csv(
    path: Path,
    text_column: str = "text",
    label_column: str = "airline_sentiment",
    category_column: str | None = None,
    id_column: str | None = "tweet_id",
) -> list[LabelledRow]:
    """Read a labelled CSV, deduplicated by ``id_column`` when that column exists."""
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(f"evaluation file {path} does not exist")
    rows: list[LabelledRow] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames or []
        for col in (text_column, label_column, category_column):
            if col and col not in fields:
                raise ClassifierError(f"{path}: no column {col!r} (columns: {', '.join(fields)})")
        use_id = id_column if id_column and id_column in fields else None
        for i, rec in enumerate(reader):
            rid = rec[use_id] if use_id else str(i)
            if use_id and rid in seen:
                continue
            seen.add(rid)
            label = (rec[label_column] or "").strip().lower()
            cat = (rec[category_column] or "").strip() if category_column else None
            rows.append(LabelledRow(rid, rec[text_column] or "", label, cat or None))
    return rows
