"""Pure decision functions: brand matching, triage scoring, first names, template sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from listener.drafting import draft_context, first_name, humanize_ago, render
from listener.errors import TemplateError
from listener.matching import match_brand, terms_in
from listener.triage import TriageInput, score_case, sla_due

TERMS = ["Zephyr Shoes", "ZephyrShoes", "Zephyr", "@zephyrshoes"]
EXCL = ["zephyr wind", "Zephyr RTOS"]


@pytest.mark.parametrize(
    ("text", "matched"),
    [
        ("My zephyr shoes broke", ("Zephyr Shoes", "Zephyr")),
        ("#ZephyrShoes help!", ("ZephyrShoes",)),
        ("hey @zephyrshoes", ("@zephyrshoes",)),
        ("zephyr-shoes order", ("Zephyr Shoes", "Zephyr")),
        ("zephyrshoestore is a scam site", ()),
        ("A light zephyr wind tonight", ()),
        ("Zephyr RTOS 4.0 released. Also my Zephyr boots rock", ("Zephyr",)),
        ("nothing to see", ()),
    ],
)
def test_match_brand(text: str, matched: tuple[str, ...]) -> None:
    assert match_brand(text, TERMS, EXCL).matched == matched
    assert terms_in(text, TERMS, EXCL) == matched  # the rollups' count: terms, no passage


def test_passage_is_the_sentences_around_the_mention() -> None:
    filler = " ".join(f"Sentence number {i} is about running." for i in range(30))
    text = f"{filler} My Zephyr Shoes order never came. I am upset. {filler}"
    m = match_brand(text, TERMS, EXCL)
    assert "My Zephyr Shoes order never came." in m.passage
    assert "I am upset." in m.passage
    assert len(m.passage) < 200


def test_triage_reasons_and_ordering() -> None:
    base = TriageInput(
        label="negative",
        unhappy_score=0.97,
        category="delivery",
        circumstances=(),
        followers=12_000,
        verified=False,
        posts_in_case=3,
        case_span=timedelta(minutes=40),
    )
    t = score_case(base)
    assert t.reasons == [
        "negative 0.97",
        "delivery",
        "12k followers",
        "3rd post in an hour",
    ]
    calm = score_case(
        TriageInput(
            label="negative",
            unhappy_score=0.55,
            category="other",
            circumstances=(),
            followers=10,
            verified=False,
            posts_in_case=1,
            case_span=None,
        )
    )
    grief = score_case(
        TriageInput(
            label="negative",
            unhappy_score=0.55,
            category="other",
            circumstances=("bereavement",),
            followers=10,
            verified=False,
            posts_in_case=1,
            case_span=None,
        )
    )
    assert t.priority > grief.priority > calm.priority
    assert "bereavement" in grief.reasons
    assert 0 <= calm.priority <= 100 and t.priority <= 100


def test_sla_due_uses_post_time_unless_old() -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert sla_due(now - timedelta(minutes=10), now, timedelta(hours=1)) == now + timedelta(
        minutes=50
    )
    assert sla_due(now - timedelta(days=30), now, timedelta(hours=1)) == now + timedelta(hours=1)


@pytest.mark.parametrize(
    ("display", "handle", "expected"),
    [
        ("Marta Kowalski", "@mkowalski", "Marta"),
        ("María Fernández", "@mariafit", "María"),
        ("JT", "@jt_builds", "JT"),
        ("user48213", "@user48213", "@user48213"),
        ("The Sole Podcast", "The Sole Podcast", "The Sole Podcast"),
        ("DEALS DEALS", "@deals", "@deals"),
        (None, "@quietfox", "@quietfox"),
        ("Kira B.", "@kbee", "Kira"),
        ("🌟 Star", "@star", "@star"),
    ],
)
def test_first_name(display: str | None, handle: str, expected: str) -> None:
    assert first_name(display, handle) == expected


def test_humanize_ago() -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert humanize_ago(now - timedelta(minutes=30), now) == "30 minutes ago"
    assert humanize_ago(now - timedelta(hours=5), now) == "5 hours ago"
    assert humanize_ago(now - timedelta(days=3), now) == "3 days ago"


def _ctx(**kw: object) -> dict:
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    base = dict(
        brand_name="Zephyr Shoes",
        brand_voice="warm",
        brand_handle="@zephyrshoes",
        handle="mkowalski",
        display_name="Marta Kowalski",
        channel="x_reply",
        category="delivery",
        circumstances=[],
        post_text="where is it",
        published_at=now - timedelta(hours=2),
        now=now,
        agent_name="Carla Reyes",
        signature="Carla",
    )
    base.update(kw)
    return draft_context(**base)  # type: ignore[arg-type]


def test_render_reply_is_personal(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent / "templates"
    d = render(root, "x_reply", "delivery", _ctx(), seed="1")
    assert d.text.startswith("@mkowalski ")
    assert "Marta" in d.text and "Carla" in d.text
    assert len(d.text) <= 280


def test_templates_are_sandboxed_and_strict(tmp_path: Path) -> None:
    (tmp_path / "replies" / "x_reply").mkdir(parents=True)
    tpl = tmp_path / "replies" / "x_reply" / "default.j2"
    tpl.write_text("{{ name.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(TemplateError, match=r"unsafe|access"):
        render(tmp_path, "x_reply", None, _ctx(), seed="1")
    tpl.write_text("Hi {{ nmae }}")
    with pytest.raises(TemplateError, match="nmae"):
        render(tmp_path, "x_reply", None, _ctx(), seed="2")


def test_hostile_post_text_is_data_not_template(tmp_path: Path) -> None:
    (tmp_path / "replies" / "x_reply").mkdir(parents=True)
    (tmp_path / "replies" / "x_reply" / "default.j2").write_text("You said: {{ post }}")
    d = render(tmp_path, "x_reply", None, _ctx(post_text="{{ 7*7 }} {% raw %}"), seed="1")
    assert d.text == "You said: {{ 7*7 }} {% raw %}"
