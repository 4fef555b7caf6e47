"""Brand matching: pure functions deciding whether a text is about the brand.

Terms match case-insensitively as whole words (``acme`` matches "Acme!" and
"#acme" but not "acmeshoes"); exclusion phrases are blanked out first, so
"Acme Corporation" does not count while another "Acme" in the same post does.
The *passage* — the sentences around each match — is what gets classified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])\s+|\n{1,}")
MAX_PASSAGE_CHARS = 1200


@dataclass(frozen=True)
class Match:
    matched: tuple[str, ...]  #: configured terms that matched, in config order
    passage: str  #: sentences around the matches ("" when nothing matched)

    def __bool__(self) -> bool:
        return bool(self.matched)


def _term_regex(term: str) -> str:
    escaped = re.escape(term.strip())
    escaped = escaped.replace(r"\ ", r"[\s\-_]+")  # "acme shoes" ~ "acme-shoes"
    return rf"(?<![\w@]){escaped}(?!\w)" if not term.startswith("@") else rf"(?<!\w){escaped}(?!\w)"


@lru_cache(maxsize=256)
def _compile(
    terms: tuple[str, ...], exclusions: tuple[str, ...]
) -> tuple[list[tuple[str, re.Pattern[str]]], re.Pattern[str] | None]:
    pats = [(t, re.compile(_term_regex(t), re.IGNORECASE)) for t in terms if t.strip()]
    excl = None
    if exclusions:
        excl = re.compile("|".join(_term_regex(e) for e in exclusions if e.strip()), re.IGNORECASE)
    return pats, excl


def _blank(text: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is None:
        return text
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_SPLIT.split(text) if s and s.strip()]


def match_brand(
    text: str,
    terms: Sequence[str],
    exclusions: Iterable[str] = (),
    *,
    context_sentences: int = 2,
) -> Match:
    """Which brand ``terms`` occur in ``text`` (ignoring ``exclusions``), and the passage."""
    pats, excl = _compile(tuple(terms), tuple(exclusions))
    cleaned = _blank(text, excl)
    matched = tuple(term for term, p in pats if p.search(cleaned))
    if not matched:
        return Match((), "")
    return Match(matched, passage_around(text, [p for _, p in pats], excl, context_sentences))


def passage_around(
    text: str,
    patterns: Sequence[re.Pattern[str]],
    exclusions: re.Pattern[str] | None = None,
    context_sentences: int = 2,
) -> str:
    """The sentences that match any pattern, with ``context_sentences`` either side."""
    sentences = split_sentences(text)
    if len(text) <= 280 or len(sentences) <= 1 + 2 * context_sentences:
        return " ".join(sentences)[:MAX_PASSAGE_CHARS]
    keep: set[int] = set()
    for i, sentence in enumerate(sentences):
        s = _blank(sentence, exclusions)
        if any(p.search(s) for p in patterns):
            keep.update(
                range(max(0, i - context_sentences), min(len(sentences), i + 1 + context_sentences))
            )
    if not keep:
        return " ".join(sentences)[:MAX_PASSAGE_CHARS]
    parts: list[str] = []
    prev = -2
    for i in sorted(keep):
        if parts and i != prev + 1:
            parts.append("…")
        parts.append(sentences[i])
        prev = i
    passage = " ".join(parts)
    if len(passage) > MAX_PASSAGE_CHARS:
        passage = passage[: MAX_PASSAGE_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return passage
