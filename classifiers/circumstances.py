"""Special circumstances recovery must know about, found by pure pattern rules.

These are rare, high-stakes signals (a death in the family, a wedding next
week) where a rule a person can read beats a model nobody can audit.
"""

from __future__ import annotations

import re

from classifiers.text import lower_matches_ignorecase

_PATTERNS: dict[str, re.Pattern[str]] = {
    "bereavement": re.compile(
        r"\b(funeral|passed away|passed on|died|death of|memorial|condolences|grieving|"
        r"bereavement|lost my (mom|mother|dad|father|husband|wife|son|daughter|grandma|grandpa|"
        r"grandmother|grandfather|brother|sister|friend))\b",
        re.I,
    ),
    "event_deadline": re.compile(
        r"\b(wedding|bridesmaids?|bride|groom|prom|graduation|honeymoon|birthday|anniversary|"
        r"christmas|holiday|vacation|trip|flight|interview|ceremony|party)\b",
        re.I,
    ),
    "child": re.compile(
        r"\b(my (son|daughter|kid|kids|child|children|baby|toddler|boy|girl)|"
        r"(son|daughter)'s|kids'|children's|baby's|newborn)\b",
        re.I,
    ),
    "illness": re.compile(
        r"\b(hospital|chemo|chemotherapy|cancer|surgery|sick|illness|ill in bed|"
        r"recovering from|diagnosed|medical|disability|wheelchair)\b",
        re.I,
    ),
}


#: The same patterns without IGNORECASE, for lower-cased text (about twice as fast; the
#: same answer: see :func:`lower_matches_ignorecase`).  Only if they are ASCII lower case.
_LOWER_PATTERNS: dict[str, re.Pattern[str]] | None = (
    {name: re.compile(pattern.pattern) for name, pattern in _PATTERNS.items()}
    if all(p.pattern.isascii() and p.pattern == p.pattern.lower() for p in _PATTERNS.values())
    else None
)


def detect_circumstances(text: str) -> tuple[str, ...]:
    """Return the special circumstances mentioned in ``text``, in a stable order."""
    if _LOWER_PATTERNS is not None and lower_matches_ignorecase(text):
        low = text.lower()
        return tuple(name for name, pattern in _LOWER_PATTERNS.items() if pattern.search(low))
    return tuple(name for name, pattern in _PATTERNS.items() if pattern.search(text))
