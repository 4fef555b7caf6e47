"""Terms in posts: what people are talking about (pure functions).

Used by the dashboard (top terms, emerging topics) and by the spike detector
(terms driving a burst, a burst of one term).  A post's terms are its words and
hashtags, lower-cased, minus stop words, links, @handles, numbers and the
brand's own names (every post names the brand), plus the pairs of adjacent
words that remain ("lost luggage").  Counting is per post: a word repeated in
one post counts once.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w+")
_BREAK = re.compile(r"[.!?,;:()\[\]{}\"“”|\n]+")
_WORD = re.compile(r"#?[^\W\d_](?:[\w'’\-]*\w)?", re.UNICODE)

_STOPWORDS_TEXT = """
    a about above after again against all also am an and any are aren't as at be because
    been before being below between both but by can can't cannot could couldn't did didn't
    do does doesn't doing don't down during each even ever every few for from further get
    gets got had hadn't has hasn't have haven't having he he'd he'll he's her here here's
    hers herself him himself his how how's however i i'd i'll i'm i've if in into is isn't
    it it's its itself just let's like me more most much must mustn't my myself never no nor
    not now of off on once one only or other ought our ours ourselves out over own really
    same shan't she she'd she'll she's should shouldn't so some still such than that that's
    the their theirs them themselves then there there's these they they'd they'll they're
    they've this those through to too under until up upon us very via was wasn't we we'd
    we'll we're we've well were weren't what what's when when's where where's which while
    who who's whom why why's will with won't would wouldn't yet you you'd you'll you're
    you've your yours yourself yourselves im ive dont cant wont didnt doesnt isnt thats
    youre theyre rt amp gt lt via yes yeah ok okay oh hi hey please thanks thank lol omg u
    ur r n y also back going go make made know think want need see say said would could one
    two three today day time way thing things new
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


@lru_cache(maxsize=200_000)
def _keep(raw: str, exclude: frozenset[str]) -> str:
    """The word as a term, or "" when it is not one (cached: vocabularies repeat)."""
    w = raw.strip("'’-").replace("’", "'")
    bare = w.lstrip("#")
    if len(bare) < 3 or bare in STOPWORDS or w in exclude or bare in exclude:
        return ""
    return w


def words_of(text: str, exclude: frozenset[str] = frozenset()) -> list[str]:
    """The post's content words in order (lower-case; stop words, links, handles, numbers,
    words shorter than 3 letters and ``exclude`` removed — each leaves a gap, as does
    punctuation, so no pair spans one; hashtags kept with their #)."""
    text = _HANDLE.sub(" | ", _URL.sub(" | ", text.lower()))
    out: list[str] = []
    for part in _BREAK.split(text):
        out.extend(_keep(raw, exclude) for raw in _WORD.findall(part))
        out.append("")
    return out


def terms_of(text: str, exclude: frozenset[str] = frozenset()) -> set[str]:
    """Every term of one post: content words and adjacent pairs of them."""
    words = words_of(text, exclude)
    terms = set(words)
    terms.discard("")
    prev = ""
    for w in words:
        if prev and w and prev != w and prev[0] != "#" and w[0] != "#":
            terms.add(f"{prev} {w}")
        prev = w
    return terms


def brand_exclusions(names: Iterable[str]) -> frozenset[str]:
    """Lower-cased brand names, handles and their single words: never a "topic"."""
    out: set[str] = set()
    for name in names:
        n = name.strip().lower().lstrip("@")
        if not n:
            continue
        out.add(n)
        out.add("#" + n.replace(" ", ""))
        out.add(n.replace(" ", ""))
        out.update(p for p in re.split(r"[\s\-_.]+", n) if p)
    return frozenset(out)


def document_frequency(texts: Iterable[str], exclude: frozenset[str] = frozenset()) -> Counter[str]:
    """In how many of ``texts`` each term occurs."""
    df: Counter[str] = Counter()
    for t in texts:
        df.update(terms_of(t, exclude))
    return df


@dataclass(frozen=True)
class TermCount:
    term: str
    count: int  #: posts (of those read) that use it
    previous: int = 0  #: the same, in the comparison period or baseline
    lift: float = 1.0  #: share now / share before
    new: bool = False  #: not seen before at all


def top_terms(df: Counter[str], limit: int = 15, *, min_count: int = 2) -> list[TermCount]:
    """The most used terms; a word is left out when a shown pair holds most of its uses."""
    ranked = [(t, c) for t, c in df.most_common() if c >= min_count]
    shown: list[TermCount] = []
    pairs: list[tuple[str, int]] = []
    for term, count in ranked:
        if " " in term:
            if count >= max(min_count, 2):
                pairs.append((term, count))
            continue
    pair_of: dict[str, int] = {}
    for pair, count in pairs:
        for w in pair.split(" "):
            pair_of[w] = max(pair_of.get(w, 0), count)
    for term, count in ranked:
        if len(shown) >= limit:
            break
        if " " not in term and pair_of.get(term, 0) >= 0.8 * count:
            continue  # "lost luggage" says it better than "lost" and "luggage"
        if " " in term and count < max(min_count, 2):
            continue
        shown.append(TermCount(term, count))
    return shown


def emerging(
    now: Counter[str],
    now_docs: int,
    before: Counter[str],
    before_docs: int,
    limit: int = 10,
    *,
    min_count: int = 3,
    min_lift: float = 2.0,
) -> list[TermCount]:
    """Terms used far more now than before (share of posts, smoothed), strongest rise first.

    Score: uses now × log(lift), so a frequent term that doubled ranks above a
    rare one that appeared twice; a term needs ``min_count`` uses (and at least
    0.5 % of the posts read) to count at all.
    """
    if now_docs <= 0:
        return []
    floor = max(min_count, math.ceil(0.005 * now_docs))
    out: list[tuple[float, TermCount]] = []
    for term, c in now.items():
        if c < floor:
            continue
        p = before.get(term, 0)
        share_now = c / now_docs
        share_before = (p + 0.5) / (before_docs + 1)
        lift = share_now / share_before
        if lift < min_lift:
            continue
        out.append((c * math.log(lift), TermCount(term, c, p, round(lift, 1), new=p == 0)))
    out.sort(key=lambda x: (-x[0], x[1].term))
    # keep pairs over their own words when both rose
    chosen: list[TermCount] = []
    words_in_pairs = {w for _, tc in out if " " in tc.term for w in tc.term.split(" ")}
    for _, tc in out:
        if " " not in tc.term and tc.term in words_in_pairs:
            continue
        chosen.append(tc)
        if len(chosen) >= limit:
            break
    return chosen


def spread_sample(items: Sequence[str], limit: int) -> list[str]:
    """At most ``limit`` of ``items``, evenly spread (keeps time order's coverage)."""
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]
