"""HTML → clean plain text, for matching and classifying blog entries.

:func:`html_to_text` is a pure function built on the standard library's
:class:`html.parser.HTMLParser` (lenient with broken markup, no dependency):

* scripts, styles and other non-content elements are dropped with their content;
* comments, images (tracking pixels included) and other void media produce nothing;
* block elements (``p``, ``div``, ``li``, headings, …) become paragraph breaks,
  ``br`` a line break, so sentence splitting still sees paragraphs;
* entities are decoded, whitespace within a line is collapsed, and invisible
  characters (zero-width spaces, soft hyphens, control characters) are removed.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Elements whose whole content is not reader-visible text.
SKIPPED_ELEMENTS = frozenset(
    {
        "script", "style", "noscript", "template", "head", "title", "iframe", "object",
        "embed", "svg", "math", "canvas", "audio", "video", "picture", "select", "button",
        "form",
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

_VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
     "source", "track", "wbr"}
)  # fmt: skip

_PARAGRAPH = "\x00P\x00"  # placeholders survive whitespace collapsing
_LINE = "\x00L\x00"
_INVISIBLE = re.compile(r"[\u00ad\u200b\u200c\u200d\u2060\ufeff\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACES = re.compile(r"\s+")
_BREAKS = re.compile(r"(?:\s*\x00[PL]\x00\s*)+")


class _TextExtractor(HTMLParser):
    """Collects visible text and break markers; see :func:`html_to_text`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._skip_stack: list[str] = []
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED_ELEMENTS:
            if tag not in _VOID_ELEMENTS:
                self._skip_stack.append(tag)
            return
        if self._skip_stack:
            return
        if tag == "br":
            self.parts.append(_LINE)
        elif tag in BLOCK_ELEMENTS:
            self.parts.append(_PARAGRAPH)
            if tag == "pre":
                self._pre_depth += 1
        elif tag in CELL_ELEMENTS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <img/>, <p/>: a self-closed element opens nothing
        if not self._skip_stack and (tag == "br" or tag in BLOCK_ELEMENTS):
            self.parts.append(_LINE if tag == "br" else _PARAGRAPH)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_stack:
            if tag in self._skip_stack:
                while self._skip_stack and self._skip_stack.pop() != tag:
                    pass
            return
        if tag in BLOCK_ELEMENTS:
            self.parts.append(_PARAGRAPH)
            if tag == "pre" and self._pre_depth:
                self._pre_depth -= 1
        elif tag in CELL_ELEMENTS:
            self.parts.append(" ")

    def finish(self) -> None:
        """Close the parser, treating an unterminated ``<!…`` the way browsers do.

        HTMLParser would emit an unterminated comment or ``<![CDATA[`` section
        as text; browsers hide a comment to the end and a bogus ``<!…`` up to
        the first ``>``.
        """
        tail = self.rawdata
        if tail.startswith("<!"):
            end = -1 if tail.startswith("<!--") else tail.find(">")
            self.rawdata = ""
            if end >= 0:
                self.feed(tail[end + 1 :])
        self.close()

    def handle_data(self, data: str) -> None:
        if self._skip_stack:
            return
        if self._pre_depth:
            data = data.replace("\r\n", "\n").replace("\n", _LINE)
        self.parts.append(data)


def _normalise(raw: str) -> str:
    """Collapse whitespace, turn break markers into newlines, drop invisible characters."""
    text = _INVISIBLE.sub("", raw)
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
    parser = _TextExtractor()
    parser.feed(html.replace("\x00", ""))
    parser.finish()
    return _normalise("".join(parser.parts))


def plain_to_text(text: str) -> str:
    """Normalise already-plain text the same way (whitespace, invisible characters).

    Lines are kept; runs of blank lines become one paragraph break.
    """
    if not text:
        return ""
    text = _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    paragraphs = re.split(r"\n\s*\n", text)
    cleaned = ("\n".join(_SPACES.sub(" ", ln).strip() for ln in p.split("\n")) for p in paragraphs)
    return "\n\n".join(p.strip("\n") for p in cleaned if p.strip())
