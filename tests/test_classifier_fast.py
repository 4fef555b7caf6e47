"""The classifier's fast paths give the answers of the code they replace (no model).

``predict`` spends ~10 % of its CPU outside the encoder (docs/benchmarks.md): keyword
hits per category, special circumstances, VADER.  Each fast path is compared with the
straightforward version on real tweets and on cases built to break it.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import numpy as np
import pytest

from classifiers.categories import KeywordIndex, _hits, _keywords_pattern
from classifiers.circumstances import _PATTERNS, detect_circumstances
from classifiers.settings import default_categories
from classifiers.text import lower_matches_ignorecase, normalize

TRICKY = [
    "",
    "   ",
    "NEVER ARRIVED!!! never arrived, Never-Arrived",
    "ſhipping İnvoice Kit ıtem",  # İ ı ſ K: case-insensitive matching folds them to ASCII
    "café refund's wi-fi zephyrshoes.com #refund @refund_desk refund_x refund2",
    "my MOTHER passed away, funeral tomorrow; my son's flight was Cancelled Flightled",
    "kids' party… children's hospital 😍 ill in bed",
    "Σ ΟΔΟΣ straße ﬁnal İstanbul",
]


def _real_tweets(shared_data: Path, n: int = 600) -> list[str]:
    with (shared_data / "airline-dev" / "Tweets-dev.csv").open(encoding="utf-8") as fh:
        airline = [row["text"] for row in csv.DictReader(fh)]
    vader = []
    for line in (shared_data / "vader" / "tweets_GroundTruth.txt").read_text("utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3:
            vader.append(parts[2])
    rng = random.Random(3)
    texts = rng.sample(airline, n) + rng.sample(vader, n)
    # the non-ASCII ones too: emojis, accents, curly quotes
    texts += [t for t in airline + vader if not t.isascii()][:200]
    return texts + [normalize(t) for t in texts] + TRICKY


def test_lower_matches_ignorecase_only_without_the_four_folding_characters() -> None:
    pattern = re.compile(r"[a-z0-9_]", re.IGNORECASE)
    folding = [chr(c) for c in range(0x80, 0x110000) if pattern.fullmatch(chr(c))]
    assert sorted(folding) == ["\u0130", "\u0131", "\u017f", "\u212a"]
    # and İ is the only character whose lower() is not one character (offsets stay put)
    assert [c for c in range(0x110000) if len(chr(c).lower()) != 1] == [0x130]
    assert all(not lower_matches_ignorecase(f"x{c}y") for c in folding)
    assert lower_matches_ignorecase("café 😍 Straße")


def _keyword_counts(patterns: list[re.Pattern[str] | None], text: str) -> list[int]:
    return [_hits(p, text) for p in patterns]


def test_keyword_index_counts_like_the_per_category_regexes(shared_data: Path) -> None:
    keywords = [spec.keywords for spec in default_categories()]
    index = KeywordIndex.build(keywords)
    assert index is not None
    patterns = [_keywords_pattern(k) for k in keywords]
    for text in _real_tweets(shared_data):
        got = index.hits(text)
        if got is None:  # İ ı ſ K: the caller uses the regexes
            assert not lower_matches_ignorecase(text)
            continue
        assert got == _keyword_counts(patterns, text), text


def test_keyword_index_on_overlapping_keywords() -> None:
    """Keywords that share words, overlap and nest: leftmost, longest, no overlap."""
    keywords = [
        ["never arrived", "arrived late", "late", "never", "arrived"],
        ["late", "too late", "so late", "late again"],
        ["wi-fi", "wi", "fi", "wi-fi down", "down"],
        ["refund", "refunds", "refund please", "please"],
        [],
    ]
    index = KeywordIndex.build(keywords)
    assert index is not None
    patterns = [_keywords_pattern(k) for k in keywords]
    vocab = ["never", "arrived", "late", "again", "too", "so", "wi", "fi", "down", "refund"]
    vocab += ["refunds", "please", "NEVER", "Late", "x", "_", "2"]
    seps = [" ", "  ", "-", ", ", "!", "'", "_", ".", "\u2019", " #", " @"]
    rng = random.Random(7)
    for _ in range(3000):
        words = rng.choices(vocab, k=rng.randint(1, 9))
        text = "".join(w + rng.choice(seps) for w in words)[: rng.randint(1, 80)]
        assert index.hits(text) == _keyword_counts(patterns, text), text


@pytest.mark.parametrize(
    "keywords",
    [[["café"]], [["#refund"]], [["refund!"]], [["ok", "help me?"]]],
)
def test_keyword_index_declines_keywords_it_cannot_match(keywords: list[list[str]]) -> None:
    assert KeywordIndex.build(keywords) is None


def test_circumstances_like_the_case_insensitive_patterns(shared_data: Path) -> None:
    for text in _real_tweets(shared_data):
        want = tuple(name for name, p in _PATTERNS.items() if p.search(text))
        assert detect_circumstances(text) == want, text


def test_fast_vader_scores_equal_vaders(shared_data: Path) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from classifiers.vader import FastVader

    slow, fast = SentimentIntensityAnalyzer(), FastVader()
    extra = [
        "I LOVE it but HATE the wait 😡😡 but ok",
        "kind of GOOD, sort of bad",
        "no no good",
        "not the shit",
        "at least good, very least good, least good",
        "never so happy, without doubt great",
        "it is NOT BAD AT ALL!!!???",
    ]
    for text in _real_tweets(shared_data) + extra:
        want, got = slow.polarity_scores(text), fast.polarity_scores(text)
        assert list(got.items()) == list(want.items()), text


def test_keyword_bonus_uses_the_regexes_for_folding_characters() -> None:
    from classifiers.categories import CategoryModel
    from classifiers.settings import CategorySpec

    specs = [CategorySpec(name="delivery", description="d", keywords=["shipping", "kit"])]
    model = CategoryModel(specs, lambda ts: np.ones((len(ts), 2), np.float32), "other")
    bonus = model.keyword_bonus(["ſhipping KIT", "shipping kit", "nothing"])
    assert bonus[:, 0].tolist() == pytest.approx([0.16, 0.16, 0.0])


@pytest.mark.parametrize(
    ("names", "fallback"),
    [
        ([spec.name for spec in default_categories()], "other"),
        ([spec.name for spec in default_categories()], "not_a_category"),
        (["delivery", "billing", "other"], "other"),
        (["praise", "other"], "other"),
        (["praise"], "other"),
        (["delivery"], "delivery"),
        (["praise", "delivery", "other", "billing"], "praise"),
    ],
)
def test_categories_for_a_batch_are_those_of_each_row(names: list[str], fallback: str) -> None:
    """The batch decision equals :func:`decide` and the softmax row by row, exactly:
    ties, categories without texts (-inf), praise and the fallback in any place."""
    from classifiers.categories import CategoryModel, _normalise
    from classifiers.settings import CategorySpec

    rng = np.random.default_rng(0)
    specs = [CategorySpec(name=x, description=x if i % 5 != 4 else "") for i, x in enumerate(names)]
    model = CategoryModel(
        specs, lambda ts: rng.standard_normal((len(ts), 8)).astype(np.float32), fallback
    )
    n = 2000
    topic = rng.standard_normal((n, 8)).astype(np.float32)
    bonus = (rng.integers(0, 4, (n, len(names))) * 0.08).astype(np.float32)
    spread = rng.uniform(0.5, 3, (n, 1)).astype(np.float32)  # cross every threshold
    scores = (_normalise(topic) @ model.prototypes.T) * spread + bonus
    scores[::11] = 0.8  # ties everywhere
    scores[:, ~model.has_proto] = -np.inf
    unhappy, positive = rng.random(n) < 0.5, rng.random(n) < 0.5
    rows = model._assign_rows(scores.copy(), unhappy.tolist(), positive.tolist())
    assert model._assign_batch(scores.copy(), unhappy, positive) == rows


def test_normalize_skips_only_substitutions_that_cannot_apply(shared_data: Path) -> None:
    import html

    from classifiers import text as T

    def plain(text: str) -> str:
        text = html.unescape(text or "")
        text = T._URL.sub("http", text)
        text = T._HANDLE.sub("@user", text)
        return T._SPACE.sub(" ", text).strip()

    extra = ["HTTP://x.co hi", "WwW.example.com", "ＨＴＴＰ://x", "@a @b  @c\t@d", "a@b", "&amp;@x"]
    for text in _real_tweets(shared_data) + extra:
        assert T.normalize(text) == plain(text), text
        assert T.model_input(text) == T._HANDLE_RUN.sub("@user", plain(text)), text
