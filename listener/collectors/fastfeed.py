"""The fast parse path: feedparser's reading of a well-formed feed, without its overhead.

feedparser is pure Python on top of ``xml.sax``: per element it builds SAX
attribute objects, joins the base URL again, looks its handler up by
``getattr`` (an ``AttributeError`` for every element it does not know) and
deep-copies dicts: about 20 ms of CPU per 100 KB feed on the dev box, with its
sanitizer off (docs/benchmarks.md, "Feed polling"). This module reads the
*same bytes with the same XML parser* (the C expat that feedparser's strict
parser uses through ``xml.sax``, driven directly) and replays the events
through a port of the part of feedparser's strict-parser state machine
(``feedparser/mixin.py``, ``namespaces/*.py``) whose output Listener reads:
ids, links, titles, content and summaries with their types and languages,
authors, dates and tags. Encoding detection, date parsing, URL joins and the
"does this plain text look like HTML" test are feedparser's own functions,
called as feedparser calls them (the commonest date shapes and plain absolute
URLs take a shortcut that gives the same answer, checked against feedparser's
functions by differential tests). So the result is feedparser's, entry for
entry; tests/test_feed_fast.py checks that on every real feed and on every
file of feedparser's 2,107-file corpus.

It only takes what it is sure of and raises :class:`NotHandled` for the rest,
which the caller then hands to feedparser:

* documents that are not well-formed (feedparser would switch to its loose,
  regex-based parser), whose encoding feedparser cannot determine, or that
  have a DOCTYPE (entities: feedparser rewrites them; we never read one);
* documents feedparser gives no RSS/Atom version (HTML pages, CDF, unknown XML);
* elements feedparser handles that are not ported here (GeoRSS, Podlove
  chapters, Creative Commons, ``<body>``, made-up ``<tags>`` …), base64 content,
  markup inside a text element that is not declared XHTML, SVG or MathML, and
  namespaced attributes inside XHTML content;
* anything that raises inside the port (feedparser then gives its own answer,
  including its own exceptions).

Hostile input: a DOCTYPE stops the parse as soon as expat has read its name,
before its internal subset, so no entity is ever declared or expanded (no
billion laughs, no XXE); expat never opens a file or URL (no external-entity handler is set); the
body was already capped at ``polling.max_bytes`` by the fetch; the port keeps
explicit stacks and never recurses, so depth costs memory linearly, not the
Python stack.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from xml.parsers import expat
from xml.sax.saxutils import escape as _xml_escape

from feedparser.api import StrictFeedParser
from feedparser.datetimes import _parse_date
from feedparser.encodings import convert_to_utf8
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri
from feedparser.util import FeedParserDict

__all__ = ["VERSIONS", "NotHandled", "parse"]

#: The feed versions the fast path answers for (feedparser's names).
VERSIONS = frozenset(
    {"rss090", "rss091u", "rss092", "rss093", "rss094", "rss20", "rss10", "rss"}
    | {"atom10", "atom03", "atom"}
)


class NotHandled(Exception):  # a decision, not an error
    """The fast path is not sure about this document: parse it with feedparser."""


# feedparser's tables, read from feedparser itself so the two cannot drift apart
_MATCH = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_CAN_BE_RELATIVE = frozenset(_FeedParserMixin.can_be_relative_uri)
_HTML_TYPES = frozenset(_FeedParserMixin.html_types)
_looks_like_html = _FeedParserMixin.looks_like_html
#: Every element name feedparser's strict parser has a start or end handler for.
_FP_STARTS = frozenset(n[7:] for n in dir(StrictFeedParser) if n.startswith("_start_"))
_FP_ENDS = frozenset(n[5:] for n in dir(StrictFeedParser) if n.startswith("_end_"))
#: FeedParserDict stores some keys under other names ("date" → "updated" …).
_KEYMAP = {k: (v[0] if isinstance(v, list) else v) for k, v in FeedParserDict.keymap.items()}
_XHTML = "application/xhtml+xml"
_XLINK = "http://www.w3.org/1999/xlink"
_FOREIGN = ("http://www.w3.org/1998/math/mathml", "http://www.w3.org/2000/svg")
#: Unprefixed elements that do not end an image's / text input's scope (feedparser's hack).
_KEEPS_IMAGE = frozenset({"title", "link", "description", "url", "href", "width", "height"})
_KEEPS_TEXTINPUT = frozenset({"title", "link", "description", "name"})
_QUERY_FIX = re.compile(r"&([A-Za-z0-9_]+);")
#: The e-mail address in an author string (feedparser's ``_sync_author_detail``).
_EMAIL = re.compile(
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)


#: Elements whose text reaches what Listener reads (directly, as a date, a tag, an
#: author, or by their FeedParserDict alias); the text of any other element is kept
#: as it is, without feedparser's clean-ups (URL joins, HTML sniffing, cp1252),
#: because nothing reads it.
_READ = frozenset(
    {
        "title", "link", "id", "description", "summary", "content", "author", "href",
        "published", "updated", "created", "category", "itunes_keywords", "media_keywords",
        "language", "title_detail", "summary_detail", "author_detail", "published_parsed",
        "updated_parsed", "created_parsed", "description_detail", "date_parsed",
        "modified_parsed", "issued_parsed",
    }
)  # fmt: skip
#: C1 controls, which feedparser maps to their windows-1252 characters.
_C1 = re.compile("[\x80-\x9f]")


#: The two date shapes nearly every feed uses: RFC 822 as RSS writes it, W3C-DTF as
#: Atom does.  For these, :func:`_date` computes what feedparser's handlers compute.
_RFC822 = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" (\d{4}) (\d\d):(\d\d):(\d\d) (?:([+-])(\d\d)(\d\d)|GMT)",
    re.ASCII,
)
_W3DTF = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:Z|([+-])(\d\d):(\d\d))", re.ASCII
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def _date(value: str) -> Any:
    """feedparser's ``_parse_date(value)``, without trying every handler for common shapes.

    feedparser tries W3C-DTF first, then RFC 822; for an RFC 822 date with a day
    name W3C-DTF always gives up, so the answer is RFC 822's, computed the way
    ``_parse_date_rfc822`` does; a strict W3C-DTF date is ``_parse_date_w3dtf``'s.
    Anything else, or an impossible date (feedparser then tries other handlers),
    goes to ``_parse_date`` itself (tests/test_feed_fast.py compares the two).
    """
    if not value:
        return None
    m = _RFC822.fullmatch(value)
    if m:
        day, month, year, hour, minute, second, sign, tzh, tzm = m.groups()
        date = (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
    else:
        m = _W3DTF.fullmatch(value)
        if not m:
            return _parse_date(value)
        year, month, day, hour, minute, second, sign, tzh, tzm = m.groups()
        date = (int(year), int(month), int(day), int(hour), int(minute), int(second))
    offset = 0
    if sign:
        offset = int(tzh) * 60 + int(tzm)
        if sign == "-":
            offset = -offset
    try:
        stamp = datetime(*date) - timedelta(minutes=offset)
        return stamp.utctimetuple()
    except (ValueError, OverflowError):
        return _parse_date(value)


#: Absolute http(s) URLs that ``urljoin`` returns unchanged, whatever the base:
#: printable ASCII, a host without brackets or user info, no ";" parameters (urljoin
#: drops an empty one), no empty "?" or "#".
_PLAIN_URL = re.compile(
    r"https?://[^\s/?#\[\]@\\;]+(?:/[^\s?#\\;]*)?(?:\?[^\s#\\]+)?(?:#[^\s\\]+)?"
)


def _join(base: str, uri: str) -> str:
    """feedparser's ``_urljoin(base, uri)``; a plain absolute http(s) URL comes back as it is
    (``urljoin`` only re-splits and re-joins it; tests/test_feed_fast.py compares the two)."""
    if uri.isascii() and uri.isprintable() and _PLAIN_URL.fullmatch(uri):
        return uri
    return _urljoin(base, uri)  # type: ignore[no-any-return]


@lru_cache(maxsize=256)
def _rebase(base: str, uri: str) -> str:
    """feedparser re-derives the base URL at every element; it is pure, so remember it."""
    return make_safe_absolute_uri(base, uri) or base


def _map_content_type(content_type: str) -> str:
    content_type = content_type.lower()
    if content_type in ("text", "plain"):
        return "text/plain"
    if content_type == "html":
        return "text/html"
    if content_type == "xhtml":
        return _XHTML
    return content_type


def _strattrs(attrs: list[tuple[str, str]]) -> str:
    return "".join(' {}="{}"'.format(k, _xml_escape(v, {'"': "&quot;"})) for k, v in attrs)


def parse(body: bytes, headers: Mapping[str, str]) -> FeedParserDict:
    """``feedparser.parse(BytesIO(body), response_headers=headers, sanitize_html=False,
    resolve_relative_uris=False)``'s answer, or :class:`NotHandled`.

    Only the keys Listener reads are guaranteed to be feedparser's (see the module
    docstring); the result (FeedParserDicts, like feedparser's) has ``"parser": "fast"``.
    """
    result: dict[str, Any] = {"bozo": False, "entries": [], "feed": {}, "headers": dict(headers)}
    if not body:
        raise NotHandled("empty document")
    data = convert_to_utf8(result["headers"], body, result)
    if not result.get("encoding"):
        raise NotHandled("unknown encoding")  # feedparser goes straight to its loose parser
    contentloc = result["headers"].get("content-location", "")
    baseuri = make_safe_absolute_uri("", contentloc) or make_safe_absolute_uri(contentloc) or ""
    baselang = result["headers"].get("content-language")
    replay = _Replay(baseuri, baselang)
    replay.run(data)
    if replay.version not in VERSIONS:
        raise NotHandled(f"feed version {replay.version or 'unknown'!r}")
    # FeedParserDict, so that reads behave as on feedparser's own result
    # (e.g. ``entry.get("updated_parsed")`` falls back to ``published_parsed``)
    return FeedParserDict(
        result,
        feed=FeedParserDict(replay.feeddata),
        entries=[FeedParserDict(entry) for entry in replay.entries],
        version=replay.version,
        namespaces=replay.namespaces_in_use,
        parser="fast",
    )


Handler = Callable[["_Replay", dict[str, str]], Any]
EndHandler = Callable[["_Replay"], Any]


class _Name(NamedTuple):
    """feedparser's view of one element name."""

    tag: str  #: "prefix:local" as unknown_starttag gets it
    method: str  #: the handler suffix ("dc_creator") and the generic key
    ends_textinput: bool
    ends_image: bool
    start: Handler | None  #: the ported start handler
    end: EndHandler | None  #: the ported end handler
    start_unported: bool  #: feedparser has a start handler that is not ported
    end_unported: bool


class _Replay:
    """feedparser's ``_FeedParserMixin`` + ``_StrictFeedParser``, ported to pyexpat callbacks.

    Method names and bodies follow feedparser's so the two can be read side by
    side; what is left out raises :class:`NotHandled`.
    """

    def __init__(self, baseuri: str, baselang: str | None):
        self.baseuri = baseuri or ""
        self.lang = baselang
        self.feeddata: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.version = ""
        self.namespaces_in_use: dict[str, str] = {}
        self.namespacemap: dict[str | None, str] = {}
        self.decls: dict[str, str] = {}
        self.infeed = self.inentry = self.incontent = self.intextinput = self.inimage = 0
        self.inauthor = self.incontributor = self.inpublisher = self.insource = 0
        self.sourcedata: dict[str, Any] = {}
        self.contentparams: dict[str, Any] = {}
        self._summary_key: str | None = None
        self.elementstack: list[list[Any]] = []
        #: (xml:base, xml:lang) of every open element: feedparser's basestack and langstack
        self.scopes: list[tuple[str, str | None]] = []
        self.title_depth = -1
        self.depth = 0
        self.has_content = 0
        self.guidislink = False
        self.property_depth_map: dict[int, dict[str, int]] = {}
        self._names: dict[str, _Name] = {}  # expat name → feedparser's view (until an xmlns)
        self._fixed_bases: set[str] = set()  # base URLs that re-deriving leaves unchanged
        if self.lang:
            self.feeddata["language"] = self.lang.replace("_", "-")

    # -- expat ----------------------------------------------------------------

    def run(self, data: bytes) -> None:
        parser = expat.ParserCreate(None, " ")
        parser.namespace_prefixes = True
        parser.buffer_text = True
        parser.buffer_size = 1 << 16
        parser.StartElementHandler = self._start_element
        parser.EndElementHandler = self._end_element
        parser.CharacterDataHandler = self.handle_data
        parser.StartNamespaceDeclHandler = self._start_prefix_mapping
        parser.StartDoctypeDeclHandler = _refuse_doctype
        try:
            parser.Parse(data, True)
        except expat.ExpatError as exc:
            raise NotHandled(f"not well-formed: {exc}") from None
        except NotHandled:
            raise
        except Exception as exc:  # anything the port cannot follow: feedparser decides
            raise NotHandled(f"{type(exc).__name__}: {exc}") from None

    def _start_prefix_mapping(self, prefix: str | None, uri: str | None) -> None:
        if not uri:
            return
        if uri.lower() in _FOREIGN:
            raise NotHandled(f"namespace {uri}")
        self.track_namespace(prefix or None, uri)
        if prefix and uri == _XLINK:
            self.decls["xmlns:" + prefix] = uri

    def _name(self, name: str) -> _Name:
        """What feedparser makes of an expat element name, remembered until an xmlns changes it."""
        info = self._names.get(name)
        if info is None:
            tag = self._element_tag(name)
            if ":" in tag:
                prefix, suffix = tag.split(":", 1)
            else:
                prefix, suffix = "", tag
            prefix = self.namespacemap.get(prefix, prefix)
            method = f"{prefix}_{suffix}" if prefix else suffix
            info = self._names[name] = _Name(
                tag,
                method,
                not prefix and tag not in _KEEPS_TEXTINPUT,
                not prefix and tag not in _KEEPS_IMAGE,
                _STARTS.get(method),
                _ENDS.get(method),
                method in _FP_STARTS,
                method in _FP_ENDS,
            )
        return info

    def _element_tag(self, name: str) -> str:
        """feedparser's name for an element (``startElementNS``; its ``qname`` is always None)."""
        parts = name.split(" ")
        if len(parts) == 1:
            return name.lower()
        namespace, localname = parts[0], parts[1]
        lowernamespace = namespace.lower()
        if "backend.userland.com/rss" in lowernamespace:
            namespace = lowernamespace = "http://backend.userland.com/rss"
        prefix = _MATCH.get(lowernamespace)
        if prefix:
            return f"{prefix}:{localname}".lower()
        if namespace:
            for known, value in self.namespaces_in_use.items():
                if known and value == namespace:
                    return f"{known}:{localname}".lower()
        return localname.lower()

    def _attributes(self, attrs: dict[str, str]) -> list[tuple[str, str]]:
        """feedparser's attribute list (``startElementNS`` + ``_normalize_attributes``)."""
        if not attrs and not self.decls:
            return []
        attrs_d, self.decls = self.decls, {}
        qnames: list[tuple[str, str]] = []
        for aname, value in attrs.items():
            parts = aname.split(" ")
            if len(parts) == 1:
                attrs_d[aname.lower()] = value
                qnames.append((aname, value))
                continue
            if len(parts) != 3:
                raise NotHandled(f"attribute {aname!r}")
            namespace, local, given = parts
            prefix = _MATCH.get(namespace.lower(), "")
            attrs_d[(f"{prefix}:{local}" if prefix else local).lower()] = value
            qnames.append((f"{given}:{local}", value))
        for qname, value in qnames:
            attrs_d[qname.lower()] = value
        return [(k, v.lower() if k in ("rel", "type") else v) for k, v in attrs_d.items()]

    def _start_element(self, name: str, attrs: dict[str, str]) -> Any:
        info = self._names.get(name) or self._name(name)
        return self.unknown_starttag(info, self._attributes(attrs) if attrs or self.decls else [])

    def _end_element(self, name: str) -> None:
        # named again, as endElementNS does: declarations inside may have changed the name
        self.unknown_endtag(self._names.get(name) or self._name(name))

    # -- the mixin ------------------------------------------------------------

    def track_namespace(self, prefix: str | None, uri: str) -> None:
        self._names.clear()
        loweruri = uri.lower()
        if not self.version:
            if (prefix, loweruri) == (None, "http://my.netscape.com/rdf/simple/0.9/"):
                self.version = "rss090"
            elif loweruri == "http://purl.org/rss/1.0/":
                self.version = "rss10"
            elif loweruri == "http://www.w3.org/2005/atom":
                self.version = "atom10"
        if "backend.userland.com/rss" in loweruri:
            uri = loweruri = "http://backend.userland.com/rss"
        if loweruri in _MATCH:
            self.namespacemap[prefix] = _MATCH[loweruri]
            self.namespaces_in_use[_MATCH[loweruri]] = uri
        else:
            self.namespaces_in_use[prefix or ""] = uri

    def unknown_starttag(self, info: _Name, attrs: list[tuple[str, str]]) -> Any:
        tag = info.tag
        self.depth += 1
        attrs_d = dict(attrs) if attrs else {}
        declared = attrs_d.get("xml:base", attrs_d.get("base")) if attrs else None
        if declared or self.baseuri not in self._fixed_bases:
            baseuri = declared or self.baseuri
            if self.baseuri:
                rebased = _rebase(self.baseuri, baseuri)
            else:
                rebased = _urljoin(self.baseuri, baseuri)
            if not declared and rebased == self.baseuri:
                self._fixed_bases.add(rebased)  # f(b, b) == b: the same for every element below
            self.baseuri = rebased
        lang = attrs_d.get("xml:lang", attrs_d.get("lang")) if attrs else None
        if lang == "":
            lang = None
        elif lang is None:
            lang = self.lang
        if lang and tag in ("feed", "rss", "rdf:RDF"):
            self.feeddata["language"] = lang.replace("_", "-")
        self.lang = lang
        self.scopes.append((self.baseuri, lang))
        for prefix, uri in attrs:
            if prefix.startswith("xmlns:"):
                self.track_namespace(prefix[6:], uri)
            elif prefix == "xmlns":
                self.track_namespace(None, uri)
        if self.incontent:
            kind = self.contentparams.get("type", "xml")
            if kind != _XHTML:  # markup inside text: feedparser's typepad and "xml" paths
                raise NotHandled(f"<{tag}> inside {kind} text")
            if tag.split(":", 1)[0] != "xhtml" or tag in ("xhtml:body", "xhtml:svg"):
                raise NotHandled(f"<{tag}> inside XHTML content")
            if any(":" in k for k, _ in attrs):
                raise NotHandled(f"namespaced attribute on <{tag}> in XHTML content")
            self.handle_data(f"<{tag.split(':', 1)[1]}{_strattrs(attrs)}>", escape=0)
            return None
        if info.ends_textinput:  # feedparser's hack for empty textinput/image elements
            self.intextinput = 0
        if info.ends_image:
            self.inimage = 0
        method = info.method
        if info.start is not None:
            return info.start(self, attrs_d)
        if info.start_unported:
            raise NotHandled(f"<{tag}> (not ported)")
        if not attrs_d:
            return self.push(method, 1)
        # an element feedparser has no handler for is kept under its own name
        self._get_context()[_KEYMAP.get(method, method)] = attrs_d
        return None

    def unknown_endtag(self, info: _Name) -> None:
        tag = info.tag
        if info.end is not None:
            info.end(self)
        elif info.end_unported:
            raise NotHandled(f"</{tag}> (not ported)")
        else:
            self.pop(info.method)
        if self.incontent and self.contentparams.get("type") == _XHTML:
            self.handle_data(f"</{tag.split(':')[-1]}>", escape=0)
        scopes = self.scopes
        if scopes:
            scopes.pop()
            if scopes:
                baseuri, self.lang = scopes[-1]
                if baseuri:
                    self.baseuri = baseuri
        self.depth -= 1

    def handle_data(self, text: str, escape: int = 1) -> None:
        if not self.elementstack:
            return
        if escape and self.contentparams.get("type") == _XHTML:
            text = _xml_escape(text)
        self.elementstack[-1][2].append(text)

    def resolve_uri(self, uri: str) -> str:
        return _join(self.baseuri or "", uri)

    def push(self, element: str, expecting_text: Any) -> None:
        self.elementstack.append([element, expecting_text, []])

    def pop(self, element: str, strip_whitespace: int = 1) -> Any:
        if not self.elementstack or self.elementstack[-1][0] != element:
            return None
        element, expecting_text, pieces = self.elementstack.pop()
        if (
            self.incontent
            and self.version == "atom10"
            and self.contentparams.get("type", "text") == _XHTML
        ):
            # remove the enclosing <div> when all the content is inside it
            while pieces and len(pieces) > 1 and not pieces[-1].strip():
                del pieces[-1]
            while pieces and len(pieces) > 1 and not pieces[0].strip():
                del pieces[0]
            if (
                pieces
                and (pieces[0] == "<div>" or pieces[0].startswith("<div "))
                and pieces[-1] == "</div>"
            ):
                depth = 0
                for piece in pieces[:-1]:
                    if piece.startswith("</"):
                        depth -= 1
                        if depth == 0:
                            break
                    elif piece.startswith("<") and not piece.endswith("/>"):
                        depth += 1
                else:
                    pieces = pieces[1:-1]
        output = "".join(pieces)
        if strip_whitespace:
            output = output.strip()
        if not expecting_text:
            return output
        if element in _READ or _KEYMAP.get(element) in _READ:
            output = self._clean(element, output)
        self.contentparams.pop("mode", None)
        self.contentparams.pop("base64", None)
        if element in ("category", "tags", "itunes_keywords"):
            return output
        if element == "title" and -1 < self.title_depth <= self.depth:
            return output
        if self.inentry and not self.insource:
            entry = self.entries[-1]
            if element == "content":
                entry.setdefault(element, [])
                contentparams = dict(self.contentparams)
                contentparams["value"] = output
                entry[element].append(contentparams)
            elif element == "link":
                if not self.inimage:
                    output = output.replace("&amp;", "&")
                    output = _QUERY_FIX.sub(r"&\g<1>", output)
                    entry[element] = output
                    if output:
                        entry["links"][-1]["href"] = output
            else:
                if element == "description":
                    element = "summary"
                depths = self.property_depth_map.setdefault(id(entry), {})
                old_value_depth = depths.get(element)
                if old_value_depth is None or self.depth <= old_value_depth:
                    depths[element] = self.depth
                    entry[_KEYMAP.get(element, element)] = output
                if self.incontent:
                    contentparams = dict(self.contentparams)
                    contentparams["value"] = output
                    entry[_KEYMAP.get(element + "_detail", element + "_detail")] = contentparams
        elif self.infeed or self.insource:
            context = self._get_context()
            if element == "description":
                element = "subtitle"
            context[_KEYMAP.get(element, element)] = output
            if element == "link":
                output = _QUERY_FIX.sub(r"&\g<1>", output)
                context[element] = output
                context["links"][-1]["href"] = output
            elif self.incontent:
                contentparams = dict(self.contentparams)
                contentparams["value"] = output
                context[_KEYMAP.get(element + "_detail", element + "_detail")] = contentparams
        return output

    def _clean(self, element: str, output: str) -> str:
        """feedparser's clean-ups of a popped text (``pop``, between storing and returning)."""
        if element in _CAN_BE_RELATIVE and output and (element != "id" or self.guidislink):
            output = self.resolve_uri(output)
        if (
            not self.version.startswith("atom")
            and self.contentparams.get("type") == "text/plain"
            and _looks_like_html(output)
        ):
            self.contentparams["type"] = "text/html"
        if not output.isascii():  # ASCII is unchanged by both steps below
            # utf-8 text that was mistaken for iso-8859-1 upstream
            with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
                output = output.encode("iso-8859-1").decode("utf-8")
            if _C1.search(output):
                output = output.translate(_cp1252)
        return output

    def push_content(
        self, tag: str, attrs_d: dict[str, str], default_content_type: str, expecting_text: Any
    ) -> None:
        self.incontent += 1
        if self.lang:
            self.lang = self.lang.replace("_", "-")
        self.contentparams = {
            "type": _map_content_type(attrs_d.get("type", default_content_type)),
            "language": self.lang,
            "base": self.baseuri,
        }
        kind = self.contentparams["type"]
        if attrs_d.get("mode", "") == "base64" or not (
            kind.startswith("text/") or kind.endswith("+xml") or kind.endswith("/xml")
        ):
            raise NotHandled(f"base64 content ({kind})")
        self.contentparams["base64"] = 0
        self.push(tag, expecting_text)

    def pop_content(self, tag: str) -> Any:
        value = self.pop(tag)
        self.incontent -= 1
        self.contentparams.clear()
        return value

    def _get_context(self) -> dict[str, Any]:
        if self.insource:
            return self.sourcedata
        if self.inimage and "image" in self.feeddata:
            return self.feeddata["image"]  # type: ignore[no-any-return]
        if self.intextinput:
            return self.feeddata["textinput"]  # type: ignore[no-any-return]
        if self.inentry:
            return self.entries[-1]
        return self.feeddata

    def _save(self, key: str, value: Any, overwrite: bool = False) -> None:
        context = self._get_context()
        if overwrite:
            context[key] = value
        else:
            context.setdefault(key, value)

    def _save_author(self, key: str, value: Any, prefix: str = "author") -> None:
        context = self._get_context()
        context.setdefault(prefix + "_detail", {})
        context[prefix + "_detail"][key] = value
        self._sync_author_detail()
        context.setdefault("authors", [{}])
        context["authors"][-1][key] = value

    def _save_contributor(self, key: str, value: Any) -> None:
        context = self._get_context()
        context.setdefault("contributors", [{}])
        context["contributors"][-1][key] = value

    def _sync_author_detail(self, key: str = "author") -> None:
        context = self._get_context()
        detail = context.get(f"{key}s", [{}])[-1]
        if detail:
            name = detail.get("name")
            email = detail.get("email")
            if name and email:
                context[key] = f"{name} ({email})"
            elif name:
                context[key] = name
            elif email:
                context[key] = email
            return
        author, email = context.get(key), None
        if not author:
            return
        emailmatch = _EMAIL.search(author)
        if emailmatch:
            email = emailmatch.group(0)
            author = author.replace(email, "")
            author = author.replace("()", "")
            author = author.replace("<>", "")
            author = author.replace("&lt;&gt;", "")
            author = author.strip()
            if author and (author[0] == "("):
                author = author[1:]
            if author and (author[-1] == ")"):
                author = author[:-1]
            author = author.strip()
        if author or email:
            context.setdefault(f"{key}_detail", detail)
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    def _add_tag(self, term: str | None, scheme: str | None, label: str | None) -> None:
        context = self._get_context()
        tags = context.setdefault("tags", [])
        if (not term) and (not scheme) and (not label):
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)

    @staticmethod
    def _enforce_href(attrs_d: dict[str, str]) -> dict[str, str]:
        href = attrs_d.get("url", attrs_d.get("uri", attrs_d.get("href")))
        if href:
            attrs_d.pop("url", None)
            attrs_d.pop("uri", None)
            attrs_d["href"] = href
        return attrs_d

    # -- namespaces/_base.py ---------------------------------------------------

    def _start_rss(self, attrs_d: dict[str, str]) -> None:
        versionmap = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
        if not self.version or not self.version.startswith("rss"):
            attr_version = attrs_d.get("version", "")
            version = versionmap.get(attr_version)
            if version:
                self.version = version
            elif attr_version.startswith("2."):
                self.version = "rss20"
            else:
                self.version = "rss"

    def _start_channel(self, attrs_d: dict[str, str]) -> None:
        self.infeed = 1
        self._cdf_common(attrs_d)

    def _cdf_common(self, attrs_d: dict[str, str]) -> None:
        if "lastmod" in attrs_d:
            self._start_updated({})
            self.elementstack[-1][-1] = attrs_d["lastmod"]
            self._end_updated()
        if "href" in attrs_d:
            self._start_link({})
            self.elementstack[-1][-1] = attrs_d["href"]
            self._end_link()

    def _start_feed(self, attrs_d: dict[str, str]) -> None:
        self.infeed = 1
        versionmap = {"0.1": "atom01", "0.2": "atom02", "0.3": "atom03"}
        if not self.version:
            self.version = versionmap.get(attrs_d.get("version", "")) or "atom"

    def _end_channel(self) -> None:
        self.infeed = 0

    def _start_image(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        if not self.inentry:
            context.setdefault("image", {})
        self.inimage = 1
        self.title_depth = -1
        self.push("image", 0)

    def _end_image(self) -> None:
        self.pop("image")
        self.inimage = 0

    def _start_textinput(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        context.setdefault("textinput", {})
        self.intextinput = 1
        self.title_depth = -1
        self.push("textinput", 0)

    def _end_textinput(self) -> None:
        self.pop("textinput")
        self.intextinput = 0

    def _start_author(self, attrs_d: dict[str, str]) -> None:
        self.inauthor = 1
        self.push("author", 1)
        context = self._get_context()
        context.setdefault("authors", [])
        context["authors"].append({})

    def _end_author(self) -> None:
        self.pop("author")
        self.inauthor = 0
        self._sync_author_detail()

    def _start_contributor(self, attrs_d: dict[str, str]) -> None:
        self.incontributor = 1
        context = self._get_context()
        context.setdefault("contributors", [])
        context["contributors"].append({})
        self.push("contributor", 0)

    def _end_contributor(self) -> None:
        self.pop("contributor")
        self.incontributor = 0

    def _start_name(self, attrs_d: dict[str, str]) -> None:
        self.push("name", 0)

    def _end_name(self) -> None:
        value = self.pop("name")
        if self.inpublisher:
            self._save_author("name", value, "publisher")
        elif self.inauthor:
            self._save_author("name", value)
        elif self.incontributor:
            self._save_contributor("name", value)
        elif self.intextinput:
            self._get_context()["name"] = value

    def _start_width(self, attrs_d: dict[str, str]) -> None:
        self.push("width", 0)

    def _end_width(self) -> None:
        self._image_size("width")

    def _start_height(self, attrs_d: dict[str, str]) -> None:
        self.push("height", 0)

    def _end_height(self) -> None:
        self._image_size("height")

    def _image_size(self, key: str) -> None:
        value = self.pop(key)
        try:
            value = int(value)
        except ValueError:
            value = 0
        if self.inimage:
            self._get_context()[key] = value

    def _start_url(self, attrs_d: dict[str, str]) -> None:
        self.push("href", 1)

    def _end_url(self) -> None:
        value = self.pop("href")
        if self.inauthor:
            self._save_author("href", value)
        elif self.incontributor:
            self._save_contributor("href", value)

    def _start_email(self, attrs_d: dict[str, str]) -> None:
        self.push("email", 0)

    def _end_email(self) -> None:
        value = self.pop("email")
        if self.inpublisher:
            self._save_author("email", value, "publisher")
        elif self.inauthor:
            self._save_author("email", value)
        elif self.incontributor:
            self._save_contributor("email", value)

    def _start_subtitle(self, attrs_d: dict[str, str]) -> None:
        self.push_content("subtitle", attrs_d, "text/plain", 1)

    def _end_subtitle(self) -> None:
        self.pop_content("subtitle")

    def _start_rights(self, attrs_d: dict[str, str]) -> None:
        self.push_content("rights", attrs_d, "text/plain", 1)

    def _end_rights(self) -> None:
        self.pop_content("rights")

    def _start_item(self, attrs_d: dict[str, str]) -> None:
        self.entries.append({})
        self.push("item", 0)
        self.inentry = 1
        self.guidislink = False
        self.title_depth = -1
        rdf = self.namespacemap.get("rdf", "rdf")
        about = attrs_d.get(f"{rdf}:about")
        if about:
            self._get_context()["id"] = about
        self._cdf_common(attrs_d)

    def _end_item(self) -> None:
        self.pop("item")
        self.inentry = 0
        self.has_content = 0

    def _start_language(self, attrs_d: dict[str, str]) -> None:
        self.push("language", 1)

    def _end_language(self) -> None:
        self.lang = self.pop("language")

    def _start_webmaster(self, attrs_d: dict[str, str]) -> None:
        self.push("publisher", 1)

    def _end_webmaster(self) -> None:
        self.pop("publisher")
        self._sync_author_detail("publisher")

    def _start_published(self, attrs_d: dict[str, str]) -> None:
        self.push("published", 1)

    def _end_published(self) -> None:
        value = self.pop("published")
        self._save("published_parsed", _date(value), overwrite=True)

    def _start_updated(self, attrs_d: dict[str, str]) -> None:
        self.push("updated", 1)

    def _end_updated(self) -> None:
        value = self.pop("updated")
        self._save("updated_parsed", _date(value), overwrite=True)

    def _start_created(self, attrs_d: dict[str, str]) -> None:
        self.push("created", 1)

    def _end_created(self) -> None:
        value = self.pop("created")
        self._save("created_parsed", _date(value), overwrite=True)

    def _start_expirationdate(self, attrs_d: dict[str, str]) -> None:
        self.push("expired", 1)

    def _end_expirationdate(self) -> None:
        self._save("expired_parsed", _date(self.pop("expired")), overwrite=True)

    def _start_category(self, attrs_d: dict[str, str]) -> None:
        term = attrs_d.get("term")
        scheme = attrs_d.get("scheme", attrs_d.get("domain"))
        label = attrs_d.get("label")
        self._add_tag(term, scheme, label)
        self.push("category", 1)

    def _end_category(self) -> None:
        value = self.pop("category")
        if not value:
            return
        tags = self._get_context()["tags"]
        if value and len(tags) and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    def _start_cloud(self, attrs_d: dict[str, str]) -> None:
        self._get_context()["cloud"] = dict(attrs_d)

    def _start_link(self, attrs_d: dict[str, str]) -> None:
        attrs_d.setdefault("rel", "alternate")
        if attrs_d["rel"] == "self":
            attrs_d.setdefault("type", "application/atom+xml")
        else:
            attrs_d.setdefault("type", "text/html")
        context = self._get_context()
        attrs_d = self._enforce_href(attrs_d)
        if "href" in attrs_d:
            attrs_d["href"] = self.resolve_uri(attrs_d["href"])
        expecting_text = self.infeed or self.inentry or self.insource
        context.setdefault("links", [])
        if not (self.inentry and self.inimage):
            context["links"].append(dict(attrs_d))
        if "href" in attrs_d:
            if (
                attrs_d.get("rel") == "alternate"
                and _map_content_type(attrs_d.get("type") or "") in _HTML_TYPES
            ):
                context["link"] = attrs_d["href"]
        else:
            self.push("link", expecting_text)

    def _end_link(self) -> None:
        self.pop("link")

    def _start_guid(self, attrs_d: dict[str, str]) -> None:
        self.guidislink = attrs_d.get("ispermalink", "true") == "true"
        self.push("id", 1)

    def _end_guid(self) -> None:
        value = self.pop("id")
        self._save("guidislink", self.guidislink and "link" not in self._get_context())
        if self.guidislink:
            self._save("link", value)

    def _start_title(self, attrs_d: dict[str, str]) -> None:
        expecting = self.infeed or self.inentry or self.insource
        self.push_content("title", attrs_d, "text/plain", expecting)

    def _end_title(self) -> None:
        value = self.pop_content("title")
        if not value:
            return
        self.title_depth = self.depth

    def _start_description(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        if "summary" in context and not self.has_content:
            self._summary_key = "content"
            self._start_content(attrs_d)
        else:
            expecting = self.infeed or self.inentry or self.insource
            self.push_content("description", attrs_d, "text/html", expecting)

    def _start_abstract(self, attrs_d: dict[str, str]) -> None:
        expecting = self.infeed or self.inentry or self.insource
        self.push_content("description", attrs_d, "text/plain", expecting)

    def _end_description(self) -> None:
        if self._summary_key == "content":
            self._end_content()
        else:
            self.pop_content("description")
        self._summary_key = None

    def _start_info(self, attrs_d: dict[str, str]) -> None:
        self.push_content("info", attrs_d, "text/plain", 1)

    def _end_info(self) -> None:
        self.pop_content("info")

    def _start_generator(self, attrs_d: dict[str, str]) -> None:
        if attrs_d:
            attrs_d = self._enforce_href(attrs_d)
            if "href" in attrs_d:
                attrs_d["href"] = self.resolve_uri(attrs_d["href"])
        self._get_context()["generator_detail"] = dict(attrs_d)
        self.push("generator", 1)

    def _end_generator(self) -> None:
        value = self.pop("generator")
        context = self._get_context()
        if "generator_detail" in context:
            context["generator_detail"]["name"] = value

    def _start_summary(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        if "summary" in context and not self.has_content:
            self._summary_key = "content"
            self._start_content(attrs_d)
        else:
            self._summary_key = "summary"
            self.push_content(self._summary_key, attrs_d, "text/plain", 1)

    def _end_summary(self) -> None:
        if self._summary_key == "content":
            self._end_content()
        else:
            self.pop_content(self._summary_key or "summary")
        self._summary_key = None

    def _start_enclosure(self, attrs_d: dict[str, str]) -> None:
        attrs_d = self._enforce_href(attrs_d)
        context = self._get_context()
        attrs_d["rel"] = "enclosure"
        context.setdefault("links", []).append(dict(attrs_d))

    def _start_source(self, attrs_d: dict[str, str]) -> None:
        if "url" in attrs_d:
            self.sourcedata["href"] = attrs_d["url"]
        self.push("source", 1)
        self.insource = 1
        self.title_depth = -1

    def _end_source(self) -> None:
        self.insource = 0
        value = self.pop("source")
        if value:
            self.sourcedata["title"] = value
        self._get_context()["source"] = copy.deepcopy(self.sourcedata)
        self.sourcedata.clear()

    def _start_content(self, attrs_d: dict[str, str]) -> None:
        self.has_content = 1
        self.push_content("content", attrs_d, "text/plain", 1)
        src = attrs_d.get("src")
        if src:
            self.contentparams["src"] = src
        self.push("content", 1)

    def _start_content_encoded(self, attrs_d: dict[str, str]) -> None:
        self.has_content = 1
        self.push_content("content", attrs_d, "text/html", 1)

    def _end_content(self) -> None:
        kind = _map_content_type(self.contentparams.get("type") or "")
        copy_to_summary = kind in ({"text/plain"} | _HTML_TYPES)
        value = self.pop_content("content")
        if copy_to_summary:
            self._save("summary", value)

    def _start_newlocation(self, attrs_d: dict[str, str]) -> None:
        self.push("newlocation", 1)

    def _end_newlocation(self) -> None:
        url = self.pop("newlocation")
        context = self._get_context()
        if context is not self.feeddata:
            return
        context["newlocation"] = make_safe_absolute_uri(self.baseuri, url.strip())

    # -- namespaces/dc.py ------------------------------------------------------

    def _end_dc_contributor(self) -> None:
        self._end_name()
        self.incontributor = 0

    def _start_dc_contributor(self, attrs_d: dict[str, str]) -> None:
        self.incontributor = 1
        context = self._get_context()
        context.setdefault("contributors", [])
        context["contributors"].append({})
        self.push("name", 0)

    def _start_dcterms_valid(self, attrs_d: dict[str, str]) -> None:
        self.push("validity", 1)

    def _end_dcterms_valid(self) -> None:
        for validity_detail in self.pop("validity").split(";"):
            if "=" in validity_detail:
                key, value = validity_detail.split("=", 1)
                if key == "start":
                    self._save("validity_start", value, overwrite=True)
                    self._save("validity_start_parsed", _date(value), overwrite=True)
                elif key == "end":
                    self._save("validity_end", value, overwrite=True)
                    self._save("validity_end_parsed", _date(value), overwrite=True)

    # -- namespaces/itunes.py --------------------------------------------------

    def _start_itunes_owner(self, attrs_d: dict[str, str]) -> None:
        self.inpublisher = 1
        self.push("publisher", 0)

    def _end_itunes_owner(self) -> None:
        self.pop("publisher")
        self.inpublisher = 0
        self._sync_author_detail("publisher")

    def _end_itunes_keywords(self) -> None:
        for term in self.pop("itunes_keywords").split(","):
            if term.strip():
                self._add_tag(term.strip(), "http://www.itunes.com/", None)

    def _start_itunes_category(self, attrs_d: dict[str, str]) -> None:
        self._add_tag(attrs_d.get("text"), "http://www.itunes.com/", None)
        self.push("category", 1)

    def _start_itunes_image(self, attrs_d: dict[str, str]) -> None:
        self.push("itunes_image", 0)
        if attrs_d.get("href"):
            self._get_context()["image"] = {"href": attrs_d.get("href")}
        elif attrs_d.get("url"):
            self._get_context()["image"] = {"href": attrs_d.get("url")}

    def _end_itunes_block(self) -> None:
        value = self.pop("itunes_block", 0)
        self._get_context()["itunes_block"] = 1 if value in ("yes", "Yes") else 0

    def _end_itunes_explicit(self) -> None:
        value = self.pop("itunes_explicit", 0)
        explicit = (None, False, True)[(value == "yes" and 2) or value == "clean" or 0]
        self._get_context()["itunes_explicit"] = explicit

    # -- namespaces/mediarss.py ------------------------------------------------

    def _start_media_category(self, attrs_d: dict[str, str]) -> None:
        attrs_d.setdefault("scheme", "http://search.yahoo.com/mrss/category_schema")
        self._start_category(attrs_d)

    def _end_media_keywords(self) -> None:
        for term in self.pop("media_keywords").split(","):
            if term.strip():
                self._add_tag(term.strip(), None, None)

    def _end_media_title(self) -> None:
        title_depth = self.title_depth
        self._end_title()
        self.title_depth = title_depth

    def _start_media_group(self, attrs_d: dict[str, str]) -> None:
        pass

    def _start_media_rating(self, attrs_d: dict[str, str]) -> None:
        self._get_context().setdefault("media_rating", attrs_d)
        self.push("rating", 1)

    def _end_media_rating(self) -> None:
        rating = self.pop("rating")
        if rating is not None and rating.strip():
            self._get_context()["media_rating"]["content"] = rating

    def _start_media_credit(self, attrs_d: dict[str, str]) -> None:
        self._get_context().setdefault("media_credit", []).append(attrs_d)
        self.push("credit", 1)

    def _end_media_credit(self) -> None:
        credit = self.pop("credit")
        if credit is not None and credit.strip():
            self._get_context()["media_credit"][-1]["content"] = credit

    def _start_media_restriction(self, attrs_d: dict[str, str]) -> None:
        self._get_context().setdefault("media_restriction", attrs_d)
        self.push("restriction", 1)

    def _end_media_restriction(self) -> None:
        restriction = self.pop("restriction")
        if restriction is not None and restriction.strip():
            codes = [cc.strip().lower() for cc in restriction.split(" ")]
            self._get_context()["media_restriction"]["content"] = codes

    def _start_media_license(self, attrs_d: dict[str, str]) -> None:
        self._get_context().setdefault("media_license", attrs_d)
        self.push("license", 1)

    def _end_media_license(self) -> None:
        license_ = self.pop("license")
        if license_ is not None and license_.strip():
            self._get_context()["media_license"]["content"] = license_

    def _start_media_content(self, attrs_d: dict[str, str]) -> None:
        self._get_context().setdefault("media_content", []).append(attrs_d)

    def _start_media_thumbnail(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        context.setdefault("media_thumbnail", [])
        self.push("url", 1)
        context["media_thumbnail"].append(attrs_d)

    def _end_media_thumbnail(self) -> None:
        url = self.pop("url")
        context = self._get_context()
        if url is not None and url.strip() and "url" not in context["media_thumbnail"][-1]:
            context["media_thumbnail"][-1]["url"] = url

    def _start_media_player(self, attrs_d: dict[str, str]) -> None:
        self.push("media_player", 0)
        self._get_context()["media_player"] = dict(attrs_d)

    def _end_media_player(self) -> None:
        value = self.pop("media_player")
        self._get_context()["media_player"]["content"] = value


def _refuse_doctype(*_: object) -> None:
    raise NotHandled("DOCTYPE (entities are feedparser's business)")


R = _Replay
#: feedparser's start handlers that are ported, by the name feedparser dispatches on.
_STARTS: dict[str, Handler] = {
    "rss": R._start_rss,
    "channel": R._start_channel,
    "feed": R._start_feed,
    "image": R._start_image,
    "textinput": R._start_textinput,
    "author": R._start_author,
    "managingeditor": R._start_author,
    "dc_author": R._start_author,
    "dc_creator": R._start_author,
    "itunes_author": R._start_author,
    "contributor": R._start_contributor,
    "dc_contributor": R._start_dc_contributor,
    "name": R._start_name,
    "itunes_name": R._start_name,
    "width": R._start_width,
    "height": R._start_height,
    "url": R._start_url,
    "homepage": R._start_url,
    "uri": R._start_url,
    "email": R._start_email,
    "itunes_email": R._start_email,
    "subtitle": R._start_subtitle,
    "tagline": R._start_subtitle,
    "itunes_subtitle": R._start_subtitle,
    "rights": R._start_rights,
    "copyright": R._start_rights,
    "dc_rights": R._start_rights,
    "item": R._start_item,
    "entry": R._start_item,
    "language": R._start_language,
    "dc_language": R._start_language,
    "webmaster": R._start_webmaster,
    "dc_publisher": R._start_webmaster,
    "published": R._start_published,
    "issued": R._start_published,
    "pubdate": R._start_published,
    "dcterms_issued": R._start_published,
    "updated": R._start_updated,
    "modified": R._start_updated,
    "lastbuilddate": R._start_updated,
    "dc_date": R._start_updated,
    "dcterms_modified": R._start_updated,
    "created": R._start_created,
    "dcterms_created": R._start_created,
    "expirationdate": R._start_expirationdate,
    "category": R._start_category,
    "keywords": R._start_category,
    "dc_subject": R._start_category,
    "media_category": R._start_media_category,
    "itunes_category": R._start_itunes_category,
    "cloud": R._start_cloud,
    "link": R._start_link,
    "guid": R._start_guid,
    "id": R._start_guid,
    "title": R._start_title,
    "dc_title": R._start_title,
    "media_title": R._start_title,
    "description": R._start_description,
    "dc_description": R._start_description,
    "media_description": R._start_description,
    "abstract": R._start_abstract,
    "info": R._start_info,
    "feedburner_browserfriendly": R._start_info,
    "generator": R._start_generator,
    "summary": R._start_summary,
    "itunes_summary": R._start_summary,
    "enclosure": R._start_enclosure,
    "source": R._start_source,
    "content": R._start_content,
    "content_encoded": R._start_content_encoded,
    "fullitem": R._start_content_encoded,
    "newlocation": R._start_newlocation,
    "dcterms_valid": R._start_dcterms_valid,
    "itunes_owner": R._start_itunes_owner,
    "itunes_image": R._start_itunes_image,
    "itunes_link": R._start_itunes_image,
    "media_group": R._start_media_group,
    "media_rating": R._start_media_rating,
    "media_credit": R._start_media_credit,
    "media_restriction": R._start_media_restriction,
    "media_license": R._start_media_license,
    "media_content": R._start_media_content,
    "media_thumbnail": R._start_media_thumbnail,
    "media_player": R._start_media_player,
}
#: feedparser's end handlers that are ported.
_ENDS: dict[str, EndHandler] = {
    "channel": R._end_channel,
    "feed": R._end_channel,
    "image": R._end_image,
    "textinput": R._end_textinput,
    "author": R._end_author,
    "managingeditor": R._end_author,
    "dc_author": R._end_author,
    "dc_creator": R._end_author,
    "itunes_author": R._end_author,
    "contributor": R._end_contributor,
    "dc_contributor": R._end_dc_contributor,
    "name": R._end_name,
    "itunes_name": R._end_name,
    "width": R._end_width,
    "height": R._end_height,
    "url": R._end_url,
    "homepage": R._end_url,
    "uri": R._end_url,
    "email": R._end_email,
    "itunes_email": R._end_email,
    "subtitle": R._end_subtitle,
    "tagline": R._end_subtitle,
    "itunes_subtitle": R._end_subtitle,
    "rights": R._end_rights,
    "copyright": R._end_rights,
    "dc_rights": R._end_rights,
    "item": R._end_item,
    "entry": R._end_item,
    "language": R._end_language,
    "dc_language": R._end_language,
    "webmaster": R._end_webmaster,
    "dc_publisher": R._end_webmaster,
    "published": R._end_published,
    "issued": R._end_published,
    "pubdate": R._end_published,
    "dcterms_issued": R._end_published,
    "updated": R._end_updated,
    "modified": R._end_updated,
    "lastbuilddate": R._end_updated,
    "dc_date": R._end_updated,
    "dcterms_modified": R._end_updated,
    "created": R._end_created,
    "dcterms_created": R._end_created,
    "expirationdate": R._end_expirationdate,
    "category": R._end_category,
    "keywords": R._end_category,
    "dc_subject": R._end_category,
    "media_category": R._end_category,
    "itunes_category": R._end_category,
    "link": R._end_link,
    "guid": R._end_guid,
    "id": R._end_guid,
    "title": R._end_title,
    "dc_title": R._end_title,
    "media_title": R._end_media_title,
    "description": R._end_description,
    "dc_description": R._end_description,
    "media_description": R._end_description,
    "abstract": R._end_description,
    "info": R._end_info,
    "feedburner_browserfriendly": R._end_info,
    "generator": R._end_generator,
    "summary": R._end_summary,
    "itunes_summary": R._end_summary,
    "source": R._end_source,
    "content": R._end_content,
    "content_encoded": R._end_content,
    "fullitem": R._end_content,
    "newlocation": R._end_newlocation,
    "dcterms_valid": R._end_dcterms_valid,
    "itunes_owner": R._end_itunes_owner,
    "itunes_keywords": R._end_itunes_keywords,
    "itunes_block": R._end_itunes_block,
    "itunes_explicit": R._end_itunes_explicit,
    "media_keywords": R._end_media_keywords,
    "media_rating": R._end_media_rating,
    "media_credit": R._end_media_credit,
    "media_restriction": R._end_media_restriction,
    "media_license": R._end_media_license,
    "media_thumbnail": R._end_media_thumbnail,
    "media_player": R._end_media_player,
}
del R
