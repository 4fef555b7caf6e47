"""Pure helpers the social collectors share: brand matching with "addressed to us", ids.

Every social collector turns one platform item into a :class:`Post` the same way:
the text is matched against the brand (:func:`listener.matching.match_brand`);
an item that does not mention the brand is left out, unless it was addressed to
the brand's account (a mention notification, an inbox mention), which counts as a
match on that account; the passage around the match is what gets classified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from listener.errors import SourceFailing
from listener.matching import Match, match_brand, passage_around

if TYPE_CHECKING:
    from listener.config import Settings, SourceSettings


def brand_match(
    text: str,
    settings: Settings,
    source: SourceSettings,
    *,
    addressed_to: str | None = None,
) -> Match | None:
    """How ``text`` mentions the brand, or ``None`` when it should be left out.

    ``addressed_to`` is the brand account a notification says the item mentions
    (``"@zephyrshoes"``); ``source.match_all`` keeps everything.
    """
    brand = settings.brand
    match = match_brand(text, brand.match_terms, brand.exclusions, tag_terms=brand.tag_terms)
    if match:
        return match
    if addressed_to or source.match_all:
        matched = (addressed_to,) if addressed_to else ()
        return Match(matched, passage_around(text, []))
    return None


def id_key(value: Any) -> tuple[int, str]:
    """Sort key for numeric-string ids of any length ("9" < "10"), other strings after."""
    text = str(value)
    return (len(text), text) if text.isdigit() else (1 << 30, text)


def newest(a: str | None, b: str | None) -> str | None:
    """The later of two numeric-string ids (``None`` counts as earliest)."""
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b, key=id_key)


@dataclass
class Tally:
    """What one collect call saw and left out (``CollectResult.stats``)."""

    requests: int = 0
    pages: int = 0
    seen: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "pages": self.pages,
            "seen": self.seen,
            "kept": self.kept,
            **{f"skipped_{k}": v for k, v in sorted(self.skipped.items())},
        }


def int_option(source: SourceSettings, name: str, default: int, lo: int, hi: int) -> int:
    """A whole-number ``options`` entry, clamped to ``lo..hi``.

    Raises :class:`SourceFailing` (shown on the source) for anything else."""
    value = source.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SourceFailing(f"options.{name} must be a whole number, not {value!r}")
    return max(lo, min(hi, value))
