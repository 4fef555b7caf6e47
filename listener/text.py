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


# ---------------------------------------------------------------------------
# characters that cannot be stored, bounded excerpts, JSON nesting

#: A code point in the surrogate range.  In a Python ``str`` every valid pair
#: has already been combined (``json.loads('"\\ud83d\\ude00"')`` is one emoji),
#: so any such code point left is a *lone* surrogate: UTF-8 cannot encode it,
#: and SQLite and PostgreSQL refuse it.
_SURROGATE = re.compile("[\ud800-\udfff]")

#: Stands for a numeric character reference that names no character
#: (``&#xD800;``, ``&#1114112;``) in a feed, see :func:`mark_bad_charrefs`.
#: U+FDD0 is a Unicode noncharacter, reserved for exactly this internal use.
BAD_CHARREF = "\ufdd0"
_CHARREF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")


def lone_surrogate(value: str) -> int | None:
    """The index of the first lone surrogate in ``value``, or None."""
    found = _SURROGATE.search(value)
    return found.start() if found else None


def unstorable_char(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a lone surrogate or a character reference
    that names no character), or None when it can."""
    at = lone_surrogate(value)
    if at is not None:
        return f"a lone surrogate U+{ord(value[at]):04X} at character {at}"
    if BAD_CHARREF in value:
        at = value.index(BAD_CHARREF)
        return f"a character reference to no character (e.g. &#xD800;) at character {at}"
    return None


def mark_bad_charrefs(body: bytes) -> bytes:
    """``body`` (XML bytes) with every numeric character reference that names no
    character (a surrogate, zero, or beyond U+10FFFF) replaced by :data:`BAD_CHARREF`.

    XML parsers refuse such a reference and feedparser's fallback parser then
    crashes on it (``chr(0xD800).encode()``), which lost the whole feed.  The
    marker is a character every parser accepts; the pipeline quarantines the
    one entry that carries it.
    """
    if b"&#" not in body:
        return body

    def repl(m: re.Match[bytes]) -> bytes:
        hexa, dec = m.group(1), m.group(2)
        code = int(hexa, 16) if hexa is not None else int(dec)
        if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
            return b"&#xFDD0;"  # a reference, so any document encoding carries it
        return m.group(0)

    return _CHARREF.sub(repl, body)


def excerpt(value: Any, limit: int = 300) -> str:
    """A short, always storable and printable rendering of ``value`` (hostile input).

    Lone surrogates, control characters and the bad-reference marker are
    written as ``\\uXXXX`` escapes; the result has at most ``limit`` characters
    (plus an ellipsis).
    """
    if isinstance(value, bytes | bytearray):
        text = bytes(value[: limit * 4]).decode("utf-8", "backslashreplace")
    elif isinstance(value, str):
        text = value[: limit * 2]
    else:
        text = repr(value)[: limit * 2]

    def esc(m: re.Match[str]) -> str:
        return f"\\u{ord(m.group(0)):04x}"

    text = _UNPRINTABLE.sub(esc, text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0]")


def json_too_deep(data: bytes | str, limit: int) -> bool:
    """Whether the JSON text ``data`` nests arrays/objects deeper than ``limit``.

    Checked before ``json.loads`` (whose recursion a line of 200,000 ``[``
    exhausts).  A line with fewer brackets than the limit is answered at once;
    otherwise one scan that skips strings.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def nesting_depth(value: Any, limit: int) -> int:
    """The nesting depth of a JSON-like value, counting at most to ``limit + 1``
    (iterative: never a RecursionError)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list | tuple):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth) for child in children)
    return deepest
