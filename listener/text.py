"""HTML → clean plain text, for matching and classifying blog entries.

:func:`html_to_text` is a pure function with a small linear-time scanner of
its own (``str.find`` and one anchored regex per tag).  The standard
library's :class:`html.parser.HTMLParser` is not used because it rescans the
rest of the document for every unterminated tag — 600 KB of ``<a <a <a …``
takes minutes — and a hostile or broken feed must not stall a poll.

* scripts, styles and other non-content elements are dropped with their content;
* comments, declarations, images (tracking pixels included) produce nothing;
* block elements (``p``, ``div``, ``li``, headings, …) become paragraph breaks,
  ``br`` a line break, so sentence splitting still sees paragraphs;
* entities are decoded, whitespace within a line is collapsed, and invisible
  characters (zero-width spaces, soft hyphens, control characters) are removed;
* broken markup is read the way browsers read it: an unterminated comment or
  tag hides the rest, a ``<`` not starting a tag is text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import unescape
from typing import Any

#: Elements whose whole content is not reader-visible text.
SKIPPED_ELEMENTS = frozenset(
    {
        "script", "style", "noscript", "template", "head", "title", "iframe", "object",
        "svg", "math", "canvas", "audio", "video", "picture", "select", "button",
        "textarea",
    }
)  # fmt: skip

#: Elements that start and end a paragraph.
BLOCK_ELEMENTS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "details", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
        "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
        "tbody", "thead", "tfoot", "tr", "ul", "body", "html",
    }
)  # fmt: skip

#: Table cells: separated by a space on the same line.
CELL_ELEMENTS = frozenset({"td", "th"})

_PARAGRAPH = "\x00P\x00"  # placeholders survive whitespace collapsing
_LINE = "\x00L\x00"
_PRE_OPEN, _PRE_CLOSE = "\x00<pre\x00", "\x00</pre\x00"  # replaced by _scan
#: Characters removed from text (zero-width, soft hyphen, BOM, C0 controls but \t\n\r).
INVISIBLE = re.compile(r"[\u00ad\u200b\u200c\u200d\u2060\ufeff\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
#: C0 controls except tab, newline and carriage return, and DEL
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BREAKS = re.compile(r"(?:\s*\x00[PL]\x00\s*)+")


#: A start or end tag, quotes respected; possessive so a failed match costs one pass.
_TAG = re.compile(r"""<(/?)([a-zA-Z][^\s/>]*+)((?:"[^"]*"|'[^']*'|[^'">])*+)>""")


@lru_cache(maxsize=64)
def _closing(tag: str) -> re.Pattern[str]:
    return re.compile(rf"</{re.escape(tag)}\s*>", re.IGNORECASE)


def _scan(html: str) -> list[str]:
    """Visible text pieces and break markers, in document order (one pass)."""
    parts: list[str] = []
    pos, n, pre = 0, len(html), 0
    while pos < n:
        lt = html.find("<", pos)
        if lt < 0:
            lt = n
        if lt > pos:
            data = unescape(html[pos:lt])
            parts.append(data.replace("\n", _LINE) if pre else data)
        if lt >= n:
            break
        pos = _markup(html, lt, parts)
        if pos < 0:
            break  # unterminated comment or tag: browsers hide the rest
        if pos == lt:  # a "<" that starts no markup is text
            parts.append("<")
            pos = lt + 1
            continue
        pre = _pre_depth(parts, pre)
    return parts


def _pre_depth(parts: list[str], depth: int) -> int:
    """Track <pre> nesting through markers left by :func:`_markup`."""
    if parts and parts[-1] in (_PRE_OPEN, _PRE_CLOSE):
        marker = parts.pop()
        parts.append(_PARAGRAPH)
        return depth + 1 if marker == _PRE_OPEN else max(0, depth - 1)
    return depth


def _markup(html: str, lt: int, parts: list[str]) -> int:
    """Handle the markup at ``lt``; the position after it, ``lt`` if none, -1 for EOF."""
    if html.startswith("<!--", lt):
        end = html.find("-->", lt + 4)
        return -1 if end < 0 else end + 3
    if html.startswith("<![CDATA[", lt):  # XHTML content: the section's text is visible
        end = html.find("]]>", lt + 9)
        if end < 0:
            return -1
        parts.append(html[lt + 9 : end])
        return end + 3
    if html.startswith(("<!", "<?"), lt):  # declarations, processing instructions
        end = html.find(">", lt + 2)
        return -1 if end < 0 else end + 1
    match = _TAG.match(html, lt)
    if match is None:
        starts_tag = re.match(r"</?[a-zA-Z]", html[lt : lt + 3]) is not None
        return -1 if starts_tag else lt
    closing, tag = match.group(1) == "/", match.group(2).lower()
    self_closed = match.group(3).rstrip().endswith("/")
    if closing:
        _end_tag(tag, parts)
        return match.end()
    if tag in SKIPPED_ELEMENTS and not self_closed:
        close = _closing(tag).search(html, match.end())
        return -1 if close is None else close.end()
    _start_tag(tag, parts)
    return match.end()


def _start_tag(tag: str, parts: list[str]) -> None:
    if tag == "br":
        parts.append(_LINE)
    elif tag == "pre":
        parts.append(_PRE_OPEN)
    elif tag in BLOCK_ELEMENTS:
        parts.append(_PARAGRAPH)
    elif tag in CELL_ELEMENTS:
        parts.append(" ")


def _end_tag(tag: str, parts: list[str]) -> None:
    if tag == "pre":
        parts.append(_PRE_CLOSE)
    elif tag in BLOCK_ELEMENTS:
        parts.append(_PARAGRAPH)
    elif tag in CELL_ELEMENTS:
        parts.append(" ")


def _normalise(raw: str) -> str:
    """Collapse whitespace, turn break markers into newlines, drop invisible characters."""
    text = INVISIBLE.sub("", raw)
    text = _SPACES.sub(" ", text)

    def breaks(m: re.Match[str]) -> str:
        return "\n\n" if _PARAGRAPH in m.group(0) else "\n"

    text = _BREAKS.sub(breaks, text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment or document, paragraphs separated by blank lines.

    >>> html_to_text("<p>Hello&nbsp;<b>world</b></p><script>x()</script><p>Bye</p>")
    'Hello world\\n\\nBye'
    """
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return _normalise(html)
    return _normalise("".join(_scan(html.replace("\x00", ""))))


def plain_to_text(text: str) -> str:
    """Normalise already-plain text the same way (whitespace, invisible characters).

    Lines are kept; runs of blank lines become one paragraph break.
    """
    if not text:
        return ""
    text = INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    paragraphs = re.split(r"\n\s*\n", text)
    cleaned = ("\n".join(_SPACES.sub(" ", ln).strip() for ln in p.split("\n")) for p in paragraphs)
    return "\n\n".join(p.strip("\n") for p in cleaned if p.strip())


def scrub(value: str) -> str:
    """``value`` without NUL and other control characters (tab and newlines stay).

    PostgreSQL refuses NUL in text and JSON, so one hostile post would stop
    its source for good; the others only confuse terminals and browsers.
    """
    return _CONTROL.sub("", value) if _CONTROL.search(value) else value


def scrub_json(value: Any) -> Any:
    """:func:`scrub` every string (keys included) of a JSON-like value."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_json(v) for v in value]
    if isinstance(value, dict):
        return {scrub(str(k)) if isinstance(k, str) else k: scrub_json(v) for k, v in value.items()}
    return value
