"""listener.caseless: the same answers as ``re.compile(pattern, re.IGNORECASE)``, faster."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from listener import composing, understanding
from listener.caseless import Caseless

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "airline-dev" / "Tweets-dev.csv"

HOSTILE = [
    "",
    "İSTANBUL flight CANCELLED, never arrived",  # lowercase is one character longer
    "ſtill waiting for my refund",  # long s: IGNORECASE matches it to "s", lower() keeps it
    "ıt never arrived, the flıght was cancelled",  # dotless i
    "\u212aEEPS CRASHING, NOT WORKING",  # Kelvin sign: lower() gives "k"
    "STILL WAITING FOR MY REFUND. LOST MY BAG 😡😡",
    "ﬁx it, the ﬂight was cancelled",  # ligatures
    "ß STRASSE: lost bag, worst service",
    "x" * 6000 + " not working",
]


def _texts() -> list[str]:
    texts = list(HOSTILE)
    if DATA.exists():
        with DATA.open(encoding="utf-8", newline="") as fh:
            rows = [r["text"] for r in csv.DictReader(fh)]
        texts += rows[:1500] + [t.upper() for t in rows[:300]] + [t.title() for t in rows[:300]]
    return texts


def _patterns() -> list[Caseless]:
    found: list[Caseless] = []

    def walk(obj: object) -> None:
        if isinstance(obj, Caseless):
            found.append(obj)
        elif isinstance(obj, (list, tuple)):
            for x in obj:
                walk(x)
        elif isinstance(obj, dict):
            for x in obj.values():
                walk(x)

    for module in (understanding, composing):
        for value in vars(module).values():
            walk(value)
    return found


def _spans(matches: object) -> list[tuple[int, int, tuple[str | None, ...]]]:
    return [(x.start(), x.end(), x.groups()) for x in matches]  # type: ignore[attr-defined]


def test_every_rule_pattern_answers_as_ignorecase_does_on_real_and_hostile_posts() -> None:
    patterns = _patterns()
    assert len(patterns) > 40
    assert sum(p.fast is not None for p in patterns) > 30  # most take the fast path
    texts = _texts()
    for pattern in patterns:
        exact = re.compile(pattern.pattern, pattern.flags)
        for text in texts:
            got, want = pattern.search(text), exact.search(text)
            assert (got and (got.span(), got.groups())) == (want and (want.span(), want.groups()))
            assert _spans(pattern.finditer(text)) == _spans(exact.finditer(text))
            assert pattern.findall(text) == exact.findall(text)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"\bstill waiting\b", "ſtill waiting", "ſtill waiting"),  # exact path for ſ
        (r"\bit never\b", "İT NEVER", "İT NEVER"),  # "İ" lowers to two characters: exact path
        (r"\bnever arrived\b", "İ: NEVER ARRIVED", "NEVER ARRIVED"),  # positions line up
        (r"\bcancell?ed\b", "Flight CANCELED", "CANCELED"),  # the text keeps its own case
    ],
)
def test_text_keeps_its_case_and_special_letters_fall_back(
    pattern: str, text: str, expected: str | None
) -> None:
    found = Caseless(pattern, re.I).search(text)
    assert (found.group(0) if found else None) == expected
    assert (found.group(0) if found else None) == (
        m.group(0) if (m := re.search(pattern, text, re.I)) else None
    )


def test_patterns_that_lowering_would_change_take_the_exact_path() -> None:
    assert Caseless(r"\b[A-Z]{2}\d{2,4}\b", re.I).fast is None  # an uppercase class
    assert Caseless(r"\x41bc", re.I).fast is None  # a character escape
    assert Caseless(r"(a)\1", re.I).fast is None  # a back-reference
    assert Caseless(r"\bnot working\b").fast is None  # case-sensitive already
    assert Caseless(r"\bnot working\b", re.I).fast is not None
