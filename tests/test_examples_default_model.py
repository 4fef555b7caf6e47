"""Acceptance on the embedded default with the default (transformer) model:
every unhappy example post gets a drafted case; happy and neutral posts do not."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import EXAMPLE_SOURCES
from sqlalchemy import select

from listener import models as m
from listener.pipeline import poll_sources

UNHAPPY_SOCIAL = {
    f"18620000{n:02d}"
    for n in (1, 2, 3, 4, 5, 6, 10, 11, 12, 14, 16, 17, 19, 20, 21, 24, 25, 26, 29)
}
HAPPY_SOCIAL = {f"18620000{n:02d}" for n in (7, 8, 15, 22, 27, 30)}
UNHAPPY_BLOGS = {
    "marathon-prep",
    "back-to-school-shoes",
    "refund-saga",
    "countdown",
    "checkout-bugs",
    "wide-feet",
    "small-kindnesses",
    "twelve-hours",
}
HAPPY_BLOGS = {"fall-boots", "review-harbor", "thank-you", "packing"}


@pytest.mark.model
def test_every_unhappy_example_post_gets_a_drafted_case(make_app: Any, tmp_path: Any) -> None:
    app = make_app(
        {
            "sources": EXAMPLE_SOURCES,
            "classifier": {"kind": "minilm", "models_dir": str(tmp_path / "models")},
        }
    )
    poll_sources(app)
    with app.sessions() as s:
        rows = s.execute(select(m.Mention.external_id, m.Mention.case_id)).all()
        drafted = set(s.scalars(select(m.Draft.case_id)))
    in_case = {ext.rsplit("/", 1)[-1]: case for ext, case in rows}
    for key in UNHAPPY_SOCIAL | UNHAPPY_BLOGS:
        assert in_case.get(key) is not None, f"unhappy example {key} has no case"
        assert in_case[key] in drafted, f"case for {key} has no draft"
    for key in HAPPY_SOCIAL | HAPPY_BLOGS:
        assert in_case.get(key) is None, f"happy example {key} opened a case"
