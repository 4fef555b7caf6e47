"""html_to_text / plain_to_text: clean text for matching and classification."""

from __future__ import annotations

import time

import pytest

from listener.text import html_to_text, plain_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("plain words", "plain words"),
        ("<p>Hello&nbsp;<b>world</b></p><p>Bye</p>", "Hello world\n\nBye"),
        ("a<br>b<br/>c", "a\nb\nc"),
        ("<ul><li>one</li><li>two</li></ul>", "one\n\ntwo"),
        ("<h2>Title</h2>Body text", "Title\n\nBody text"),
        ("Fish &amp; chips &lt;3 &#8217;s &eacute;", "Fish & chips <3 ’s é"),
        ("  lots   of \n\t whitespace  ", "lots of whitespace"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\n\nc"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_scripts_styles_comments_and_pixels_are_dropped() -> None:
    html = (
        "<style>p { color: red }</style><p>Visible</p>"
        "<script>track('x < y');</script><!-- a comment -->"
        '<img src="https://t.example/pixel.gif" width="1" height="1" alt="">'
        "<noscript><img src=x></noscript><iframe src=ad>ad text</iframe>"
        "<p>Also visible</p>"
    )
    assert html_to_text(html) == "Visible\n\nAlso visible"


def test_nested_skipped_elements_and_unclosed_tags() -> None:
    assert html_to_text("<svg><title>icon</title><g>x</g></svg>after") == "after"
    assert html_to_text("<p>open <b>bold <i>both") == "open bold both"


def test_invisible_characters_are_removed() -> None:
    assert html_to_text("zero\u200bwidth soft\u00adhyphen \ufeffbom") == "zerowidth softhyphen bom"


def test_preformatted_text_keeps_lines() -> None:
    assert html_to_text("<pre>line 1\nline 2</pre>") == "line 1\nline 2"


def test_paragraph_breaks_feed_sentence_splitting() -> None:
    from listener.matching import split_sentences

    text = html_to_text("<p>First para without stop</p><p>Second para</p>")
    assert split_sentences(text) == ["First para without stop", "Second para"]


def test_plain_to_text_keeps_paragraphs() -> None:
    assert plain_to_text("a  b\r\n\r\n\r\n c\nd ") == "a b\n\nc\nd"
    assert plain_to_text("x < y & z") == "x < y & z"  # plain text is never parsed as HTML


def test_unterminated_declarations_are_hidden_like_a_browser_does() -> None:
    assert html_to_text("<![CDATA[<script></script>]]&gt;") == ""
    assert html_to_text("visible <!-- never closed") == "visible"


@pytest.mark.parametrize(
    "hostile",
    [
        "<a " * 200_000,  # unterminated tags: quadratic in html.parser
        "<a" * 300_000,
        '<p x="a>b" ' * 100_000,
        "<!--" * 300_000,
        "<script>" * 100_000,
        "< " * 300_000,
    ],
)
def test_hostile_markup_is_linear(hostile: str) -> None:
    started = time.perf_counter()
    html_to_text(hostile)
    assert time.perf_counter() - started < 2.0


# ---------------------------------------------------------------------------
# characters that cannot be stored, excerpts, JSON nesting (issue #14)


def test_unstorable_characters() -> None:
    import json

    from listener.text import BAD_CHARREF, lone_surrogate, unstorable_char

    assert lone_surrogate("fine \U0001f600 emoji") is None
    assert lone_surrogate(json.loads('"a\\ud83d\\ude00b"')) is None  # a pair is one character
    broken = json.loads('"still waiting \\ud83d"')
    assert lone_surrogate(broken) == 14
    assert unstorable_char(broken) == "a lone surrogate U+D83D at character 14"
    assert "character reference to no character" in (unstorable_char(f"x{BAD_CHARREF}") or "")
    assert unstorable_char("plain text") is None


def test_mark_bad_charrefs() -> None:
    from listener.text import mark_bad_charrefs

    body = b"<t>&#xD800; &#55296; &#0; &#x110000; &#x1F600; &#39; &amp;#xD800;</t>"
    assert mark_bad_charrefs(body) == (
        b"<t>&#xFDD0; &#xFDD0; &#xFDD0; &#xFDD0; &#x1F600; &#39; &amp;#xD800;</t>"
    )
    assert mark_bad_charrefs(b"<t>no references</t>") == b"<t>no references</t>"


def test_excerpt_is_bounded_escaped_and_storable() -> None:
    from listener.text import excerpt

    assert excerpt("a\ud800b\x00c\x9bd") == "a\\ud800b\\u0000c\\u009bd"
    long = excerpt("x" * 10_000, 300)
    assert len(long) == 300 and long.endswith("…")
    assert excerpt(b"bytes \xff here") == "bytes \\xff here"
    assert excerpt(None) == "None"
    excerpt("a\ud800" * 500).encode("utf-8")  # never raises


def test_json_nesting_limits() -> None:
    from listener.text import json_too_deep, nesting_depth

    assert not json_too_deep(b'{"a": [1, {"b": [2]}]}', 4)  # four levels
    assert json_too_deep(b'{"a": [1, {"b": [2]}]}', 3)
    assert json_too_deep(b"[" * 200_000, 32)
    assert not json_too_deep(b'{"text": "' + b"[" * 1000 + b'"}', 32)  # inside a string
    assert not json_too_deep(b'{"t": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\""}', 4)
    deep: list = []
    node = deep
    for _ in range(5000):  # deeper than Python's recursion limit
        node.append([])
        node = node[0]
    assert nesting_depth(deep, 32) == 33
    assert nesting_depth({"a": [1, {"b": 2}]}, 32) == 3
