"""VADER's ``polarity_scores``, the same numbers in about half the time.

``vaderSentiment.SentimentIntensityAnalyzer`` is pure Python and rebuilds
work it has already done: every character goes through a string
concatenation to replace emojis (a tweet rarely has one), and each
sentiment-laden word lower-cases the whole sentence again, once per rule
that looks at its neighbours.  :class:`FastVader` keeps VADER's rules and
arithmetic as they are, in the same order (the scores are equal, not
close: ``tests/test_classifier_fast.py`` compares them on real tweets), and
only lower-cases each word once, and skips the emoji pass when the text has
no emoji.  The rule code below follows vaderSentiment 3.3.2
(``vaderSentiment/vaderSentiment.py``, MIT licence, C.J. Hutto).

Imported lazily (``classifiers.lexicon._analyzer``): importing it loads the lexicon.
"""

from __future__ import annotations

import string
from typing import Any

from vaderSentiment import vaderSentiment as _vs

_NEGATE = frozenset(_vs.NEGATE)
_BOOSTER = _vs.BOOSTER_DICT
_SPECIAL = _vs.SPECIAL_CASES
_N_SCALAR = _vs.N_SCALAR
_C_INCR = _vs.C_INCR
_PUNCTUATION = string.punctuation


def _negated(word: str) -> bool:
    """``vaderSentiment.negated([word])`` for one lower-cased word."""
    return word in _NEGATE or "n't" in word


class FastVader(_vs.SentimentIntensityAnalyzer):  # type: ignore[misc]
    """VADER with ``polarity_scores`` computed once per word, not once per rule."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the emoji pass replaces single characters only; ASCII text skips it when no
        # emoji key is an ASCII character (none is in VADER's lexicon)
        self._ascii_emoji = any(len(k) == 1 and k.isascii() for k in self.emojis)

    def _without_emoji(self, text: str) -> str:
        emojis = self.emojis
        if (text.isascii() and not self._ascii_emoji) or not any(c in emojis for c in text):
            return text.strip()
        # VADER's own loop (vaderSentiment.polarity_scores)
        out = ""
        prev_space = True
        for ch in text:
            if ch in emojis:
                if not prev_space:
                    out += " "
                out += emojis[ch]
                prev_space = False
            else:
                out += ch
                prev_space = ch == " "
        return out.strip()

    def polarity_scores(self, text: str) -> dict[str, float]:
        text = self._without_emoji(text)
        punctuation = _PUNCTUATION
        # _strip_punc_if_word, inline
        words = [w if len(s := w.strip(punctuation)) <= 2 else s for w in text.split()]
        lows = [w.lower() for w in words]
        n = len(words)
        caps = sum(1 for w in words if w.isupper())
        is_cap_diff = 0 < n - caps < n
        lexicon = self.lexicon
        sentiments: list[float] = []
        for i, low in enumerate(lows):
            # boosters and "kind of" count 0, and so does a word the lexicon does not know
            if (
                low in _BOOSTER
                or (i < n - 1 and low == "kind" and lows[i + 1] == "of")
                or low not in lexicon
            ):
                sentiments.append(0)
            else:
                sentiments.append(self._valence(words, lows, i, is_cap_diff))
        if "but" in lows:
            sentiments = self._but_check(words, sentiments)
        return self.score_valence(sentiments, text)  # type: ignore[no-any-return]

    def _valence(self, words: list[str], lows: list[str], i: int, is_cap_diff: bool) -> float:
        """``sentiment_valence`` for word ``i``, which is in the lexicon."""
        lexicon = self.lexicon
        item_lowercase = lows[i]
        n = len(words)
        valence = lexicon[item_lowercase]
        if item_lowercase == "no" and i != n - 1 and lows[i + 1] in lexicon:
            valence = 0.0
        if (
            (i > 0 and lows[i - 1] == "no")
            or (i > 1 and lows[i - 2] == "no")
            or (i > 2 and lows[i - 3] == "no" and lows[i - 1] in ["or", "nor"])
        ):
            valence = lexicon[item_lowercase] * _N_SCALAR
        if words[i].isupper() and is_cap_diff:
            if valence > 0:
                valence += _C_INCR
            else:
                valence -= _C_INCR
        for start_i in range(0, 3):
            if i > start_i and lows[i - (start_i + 1)] not in lexicon:
                s = _vs.scalar_inc_dec(words[i - (start_i + 1)], valence, is_cap_diff)
                if start_i == 1 and s != 0:
                    s = s * 0.95
                if start_i == 2 and s != 0:
                    s = s * 0.9
                valence = valence + s
                valence = self._negation(valence, lows, start_i, i)
                if start_i == 2:
                    valence = self._idioms(valence, lows, i)
        return self._least(valence, lows, i)

    @staticmethod
    def _negation(valence: float, lows: list[str], start_i: int, i: int) -> float:
        """``_negation_check`` on the lower-cased words."""
        if start_i == 0 and _negated(lows[i - 1]):
            valence = valence * _N_SCALAR
        if start_i == 1:
            if lows[i - 2] == "never" and (lows[i - 1] == "so" or lows[i - 1] == "this"):
                valence = valence * 1.25
            elif lows[i - 2] == "without" and lows[i - 1] == "doubt":
                valence = valence
            elif _negated(lows[i - 2]):
                valence = valence * _N_SCALAR
        if start_i == 2:
            # VADER's precedence: (never and (so or this)) or (so or this)
            if (lows[i - 3] == "never" and (lows[i - 2] == "so" or lows[i - 2] == "this")) or (
                lows[i - 1] == "so" or lows[i - 1] == "this"
            ):
                valence = valence * 1.25
            elif lows[i - 3] == "without" and (lows[i - 2] == "doubt" or lows[i - 1] == "doubt"):
                valence = valence
            elif _negated(lows[i - 3]):
                valence = valence * _N_SCALAR
        return valence

    @staticmethod
    def _idioms(valence: float, lows: list[str], i: int) -> float:
        """``_special_idioms_check`` on the lower-cased words."""
        onezero = f"{lows[i - 1]} {lows[i]}"
        twoonezero = f"{lows[i - 2]} {lows[i - 1]} {lows[i]}"
        twoone = f"{lows[i - 2]} {lows[i - 1]}"
        threetwoone = f"{lows[i - 3]} {lows[i - 2]} {lows[i - 1]}"
        threetwo = f"{lows[i - 3]} {lows[i - 2]}"
        for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
            if seq in _SPECIAL:
                valence = _SPECIAL[seq]
                break
        if len(lows) - 1 > i:
            zeroone = f"{lows[i]} {lows[i + 1]}"
            if zeroone in _SPECIAL:
                valence = _SPECIAL[zeroone]
        if len(lows) - 1 > i + 1:
            zeroonetwo = f"{lows[i]} {lows[i + 1]} {lows[i + 2]}"
            if zeroonetwo in _SPECIAL:
                valence = _SPECIAL[zeroonetwo]
        for n_gram in (threetwoone, threetwo, twoone):
            if n_gram in _BOOSTER:
                valence = valence + _BOOSTER[n_gram]
        return valence

    def _least(self, valence: float, lows: list[str], i: int) -> float:
        """``_least_check`` on the lower-cased words."""
        lexicon = self.lexicon
        if i > 1 and lows[i - 1] not in lexicon and lows[i - 1] == "least":
            if lows[i - 2] != "at" and lows[i - 2] != "very":
                valence = valence * _N_SCALAR
        elif i > 0 and lows[i - 1] not in lexicon and lows[i - 1] == "least":
            valence = valence * _N_SCALAR
        return valence
