"""Which language a mention is written in: a pure function over Google's CLD2.

:func:`detect_language` returns an ISO 639-1 code (``"ja"``, ``"pt"``; Chinese as
``"zh"`` or ``"zh-Hant"``) or ``"und"`` (undetermined) when the text is too short or
mixed for CLD2 to be sure: only a *reliable* detection is reported, since a wrong
language is worse than none.  Links, @handles and e-mail addresses are removed
first (they are not language), and characters CLD2 refuses (control characters,
lone surrogates) are dropped.

CLD2 (``pycld2``) ships its tables inside the wheel: nothing is downloaded, it
loads in milliseconds and classifies a post in well under a millisecond (see
docs/design.md for the comparison with py3langid on real customer posts).
"""

from __future__ import annotations

import re

UNDETERMINED = "und"
#: CLD2's legacy codes → today's ISO 639-1
_RENAMED = {"iw": "he", "jw": "jv", "in": "id", "ji": "yi"}
_NOT_LANGUAGE = re.compile(
    r"https?://\S+|www\.\S+|[\w.+\-]+@[\w\-]+\.[\w.\-]+|(?<!\w)[@＠][\w.\-]+(?:@[\w.\-]+)?"
)
_REFUSED = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def detect_language(text: str) -> str:
    """The language of ``text`` (ISO 639-1), or ``"und"`` when CLD2 is not sure."""
    import pycld2  # lazily: `listener --help` loads nothing it does not need

    clean = _REFUSED.sub("", _NOT_LANGUAGE.sub(" ", text[:20_000]))
    if not any(ch.isalpha() for ch in clean):
        return UNDETERMINED
    try:
        reliable, _, details = pycld2.detect(clean)
    except pycld2.error:
        return UNDETERMINED
    code = details[0][1] if details else "un"
    if not reliable or code in ("un", "xxx", "xx"):
        return UNDETERMINED
    return _RENAMED.get(code, code)
