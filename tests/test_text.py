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
