"""Text normalisation shared by training and inference.

Social posts carry handles and links that say nothing about sentiment; they
are replaced by fixed tokens so the model sees the same shape of text at
training and inference time.
"""

from __future__ import annotations

import html
import re

_HANDLE = re.compile(r"(?<!\w)@\w{1,30}")
_URL = re.compile(r"(https?://\S+|www\.\S+)", re.I)
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Unescape HTML entities, mask @handles and URLs, collapse whitespace."""
    text = html.unescape(text or "")
    low = text.lower()
    # a URL needs "http" or "www." in any case (no other character folds to h, t, p or w)
    if "http" in low or "www." in low:
        text = _URL.sub("http", text)
    if "@" in text:
        text = _HANDLE.sub("@user", text)
    return _SPACE.sub(" ", text).strip()


_HANDLE_RUN = re.compile(r"@user(?:\s+@user)+")


def model_input(text: str) -> str:
    """What the encoder sees of a post: normalised, a run of handles as one ``@user``."""
    text = normalize(text)
    return _HANDLE_RUN.sub("@user", text) if "@user" in text else text


#: The only characters that case-insensitive matching equates with ASCII letters (İ ı ſ K);
#: İ is also the only character whose ``lower()`` is two characters.
_ASCII_FOLDS = re.compile("[\u0130\u0131\u017f\u212a]")


def lower_matches_ignorecase(text: str) -> bool:
    """Whether an ASCII lower-case pattern matches ``text.lower()`` exactly where it
    matches ``text`` with ``re.IGNORECASE`` (same offsets, same word boundaries).

    True for every text without İ ı ſ K: other characters keep their length and
    their word-ness when lower-cased, and none of them folds to an ASCII letter.
    Matching the lower-cased text without the flag is about twice as fast.
    """
    return text.isascii() or not _ASCII_FOLDS.search(text)
