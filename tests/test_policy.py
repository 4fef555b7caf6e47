"""Pure sending rules: X's weighted length and the reply policy."""

from __future__ import annotations

import pytest

from listener.policy import check_x_reply, mentioned_handles, x_weighted_length

BRAND = ["Acme", "acme shoes", "@acmeshoes", "@acmehelp"]
TARGET = "@acmeshoes my sneakers fell apart after a week"
GOOD = "So sorry about that! Please DM us your order number and we'll make it right."


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("hello", 5),
        ("a" * 280, 280),
        ("Ünïcödé привет", 14),  # Latin-1, Latin Extended, Cyrillic: weight 1
        ("cafe\u0301", 4),  # NFC-normalised first
        ("“quoted” – dash", 15),  # general punctuation in the light ranges
        ("…", 2),  # U+2026 is outside them
        ("日本語", 6),
        ("한국어", 6),
        ("😀", 2),
        ("👨‍👩‍👧‍👦", 2),  # one ZWJ sequence
        ("👍🏽", 2),  # skin tone modifier
        ("🇯🇵", 2),  # flag
        ("1️⃣", 2),  # keycap
        ("🏳️‍🌈", 2),
        ("©", 1),
        ("https://example.com/a/very/long/path/that/goes/on/and/on?x=1", 23),
        ("see example.com.", 4 + 23 + 1),
        ("(https://x.com/a)", 1 + 23 + 1),
        ("mail me at a@example.com", 24),  # e-mail addresses are not links
    ],
)
def test_weighted_length(text: str, length: int) -> None:
    assert x_weighted_length(text) == length


def test_cjk_limit_is_140_characters() -> None:
    assert x_weighted_length("あ" * 140) == 280
    assert x_weighted_length("あ" * 141) == 282


def test_mentioned_handles() -> None:
    text = "hi @Sam_Flyer and @jo_b! mail a@b.com, @Sam_flyer again"
    assert mentioned_handles(text) == ["sam_flyer", "jo_b"]


def test_a_good_reply_passes() -> None:
    assert check_x_reply(GOOD, TARGET, BRAND, False, author="@sam") == []


def test_target_must_mention_the_brand() -> None:
    for target in ("@acmeshoes help", "Acme Shoes are great", "my #acme order"):
        assert check_x_reply(GOOD, target, BRAND, False) == []
    (problem,) = check_x_reply(GOOD, "my sneakers fell apart", BRAND, False)
    assert "does not mention the brand" in problem


def test_length_limit() -> None:
    assert check_x_reply("a" * 280, TARGET, BRAND, False) == []
    (problem,) = check_x_reply("a" * 281, TARGET, BRAND, False)
    assert "281 characters" in problem
    # 23 per link, however long
    assert (
        check_x_reply("a" * 250 + " https://acme.example/" + "p" * 200, TARGET, BRAND, False) == []
    )


def test_mentions_only_of_the_author_or_the_brand() -> None:
    assert (
        check_x_reply(
            "@sam thanks! our @acmehelp team will DM you", TARGET, BRAND, False, author="sam"
        )
        == []
    )
    (problem,) = check_x_reply("@sam ask @jo_b", TARGET, BRAND, False, author="sam")
    assert "@jo_b" in problem and "@sam" not in problem
    # without the author, no other account may be mentioned
    (problem,) = check_x_reply("@sam thanks", TARGET, BRAND, False)
    assert "@sam" in problem
    assert check_x_reply("write to help@acme.example", TARGET, BRAND, False) == []


def test_not_twice_to_the_same_post() -> None:
    assert check_x_reply(GOOD, TARGET, BRAND, True) == ["the brand already replied to this post"]


def test_empty_and_invalid_characters() -> None:
    assert "the reply is empty" in check_x_reply("  \n", TARGET, BRAND, False)
    (problem,) = check_x_reply("hi \u202e there", TARGET, BRAND, False)
    assert "characters X rejects" in problem


def test_every_problem_is_listed() -> None:
    problems = check_x_reply("@jo_b " + "x" * 300, "unrelated", BRAND, True)
    assert len(problems) == 4
