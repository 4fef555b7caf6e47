"""Brand matching: pure functions deciding whether a text is about the brand.

Terms match case-insensitively as whole words (``acme`` matches "Acme!" and
"#acme" but not "acmeshoes"); exclusion phrases are blanked out first, so
"Acme Corporation" does not count while another "Acme" in the same post does.
The *passage* — the sentences around each match — is what gets classified.

Beyond English:

* text is compared in Unicode NFKC form, so full-width "Ａｍａｚｏｎ" is "Amazon";
* a word boundary is only required against letters of scripts that separate words
  with spaces: "Amazonで注文した" (Japanese), "在Amazon买的" (Chinese), "Amazon에서"
  (Korean particles) and Thai match, while "Amazonian" still does not; a term written
  in such a script ("アマゾン", "亚马逊") matches inside running text;
* ``tag_terms`` (``brand.tag_terms``) also match *inside* hashtags and handles:
  ``amazon`` in "#amazonprimebrasil", "@amazonuk", "u/amazonhelp";
* sentences also end at "。", "！", "？".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])\s*|\n+")
MAX_PASSAGE_CHARS = 1200

#: Scripts written without spaces between words (and Hangul, whose particles attach to
#: any word): a neighbour from these never makes a Latin term "part of a longer word".
UNSPACED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"  # Hangul
)
_UNSPACED_CHAR = re.compile(f"[{UNSPACED}]")
#: a word character that is not from an unspaced script: the boundary that matters
_WORDISH = rf"[^\W{UNSPACED}]"


@dataclass(frozen=True)
class Match:
    matched: tuple[str, ...]  #: configured terms that matched, in config order
    passage: str  #: sentences around the matches ("" when nothing matched)

    def __bool__(self) -> bool:
        return bool(self.matched)


def fold(text: str) -> str:
    """The form text and terms are compared in (NFKC: full-width letters, ligatures)."""
    return unicodedata.normalize("NFKC", text)


def _term_regex(term: str) -> str:
    term = fold(term.strip())
    escaped = re.escape(term).replace(r"\ ", r"[\s\-_]+")  # "acme shoes" ~ "acme-shoes"
    if _UNSPACED_CHAR.match(term[:1] or " ") and _UNSPACED_CHAR.match(term[-1:] or " "):
        return escaped  # a term in an unspaced script: no word boundaries to ask for
    # a Latin term may touch CJK/Thai/Hangul letters, never other letters or digits
    not_handle = "" if term.startswith("@") else "(?<!@)"
    return rf"(?<!{_WORDISH}){not_handle}{escaped}(?!{_WORDISH})"


def _tag_regex(term: str) -> str:
    """``term`` anywhere inside a hashtag or handle (#…, @…, u/…, r/…)."""
    word = re.escape(fold(term.strip().lstrip("#@")))
    return rf"(?:[#＃@＠]|(?<![\w/])/?[ur]/)[\w.\-]*?{word}[\w.\-]*"


@lru_cache(maxsize=256)
def _compile(
    terms: tuple[str, ...], exclusions: tuple[str, ...], tag_terms: tuple[str, ...] = ()
) -> tuple[list[tuple[str, re.Pattern[str]]], re.Pattern[str] | None]:
    pats = [(t, re.compile(_term_regex(t), re.IGNORECASE)) for t in terms if t.strip()]
    pats += [(t, re.compile(_tag_regex(t), re.IGNORECASE)) for t in tag_terms if t.strip()]
    excl = None
    if exclusions:
        parts = [_term_regex(e) for e in exclusions if e.strip()]
        if tag_terms:  # "amazon rainforest" also as "#amazonrainforest"
            parts += [
                rf"[#＃@＠]{re.escape(fold(e).replace(' ', ''))}\w*"
                for e in exclusions
                if " " in e.strip()
            ]
        excl = re.compile("|".join(parts), re.IGNORECASE) if parts else None
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
    tag_terms: Sequence[str] = (),
) -> Match:
    """Which brand ``terms`` (and ``tag_terms`` inside hashtags and handles) occur in
    ``text`` (ignoring ``exclusions``), and the passage around them."""
    pats, excl = _compile(tuple(terms), tuple(exclusions), tuple(tag_terms))
    folded = fold(text)
    matched = _matched(folded, pats, excl)
    if not matched:
        return Match((), "")
    return Match(matched, passage_around(folded, [p for _, p in pats], excl, context_sentences))


def terms_in(text: str, terms: Sequence[str], exclusions: Iterable[str] = ()) -> tuple[str, ...]:
    """:func:`match_brand`'s terms alone (no passage: counting posts needs none)."""
    pats, excl = _compile(tuple(terms), tuple(exclusions), ())
    return _matched(fold(text), pats, excl)


def _matched(
    folded: str, pats: Sequence[tuple[str, re.Pattern[str]]], excl: re.Pattern[str] | None
) -> tuple[str, ...]:
    cleaned = _blank(folded, excl)
    matched: dict[str, None] = {}
    for term, p in pats:
        if p.search(cleaned):
            matched.setdefault(term, None)
    return tuple(matched)


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
