"""The category set and the category decision (pure parts; no model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from classifiers.categories import PRAISE_MIN, PROBLEM_MIN, CategoryModel, decide
from classifiers.settings import (
    ClassifierSettings,
    default_categories,
    load_categories_yaml,
    user_cache_dir,
)
from listener.errors import ClassifierError

ROOT = Path(__file__).resolve().parent.parent
TWCS_SET = [
    "delivery",
    "damaged_or_defective",
    "wrong_item_or_size",
    "returns_and_refunds",
    "billing",
    "account_or_login",
    "app_or_website",
    "service_outage",
    "rude_or_slow_service",
    "product_or_policy",
    "travel_disruption",
    "praise",
    "other",
]


def test_default_set_is_the_twcs_set_with_descriptions_and_examples() -> None:
    specs = default_categories()
    assert [c.name for c in specs] == TWCS_SET
    for c in specs:
        assert c.description, c.name
        if c.name != "other":
            assert len(c.examples) >= 8, c.name
    assert ClassifierSettings().fallback_category == "other"


def test_extra_categories_add_or_replace_without_touching_the_rest() -> None:
    s = ClassifierSettings(
        extra_categories=[
            {"name": "allergens", "description": "allergens not on the label"},
            {"name": "praise", "description": "our own praise", "examples": ["yay"]},
        ]
    )
    names = [c.name for c in s.categories]
    assert names == [*TWCS_SET, "allergens"]
    assert s.categories[names.index("praise")].examples == ["yay"]
    assert s.extra_categories == []
    # the same settings dumped and loaded again are the same (config output round-trips)
    again = ClassifierSettings.model_validate(s.model_dump())
    assert [c.name for c in again.categories] == names


@pytest.mark.parametrize(
    "bad",
    [
        {"extra_categories": [{"name": ""}]},
        {"extra_categories": [{"name": "x" * 101}]},
        {"categories": [{"name": "a"}, {"name": "a"}], "fallback_category": "a"},
        {"categories": [{"name": "a"}], "fallback_category": "other"},
        {"extra_categories": [{"name": "a", "keywords": "not a list"}]},
    ],
)
def test_bad_categories_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        ClassifierSettings.model_validate(bad)


def test_categories_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "cats.yaml"
    for text in (
        "[1, 2]",
        "categories: [{name: a, bogus: 1}]",
        "categories: [{name: a}]\neval_mapping: {x: nope}",
        "categories: [unterminated",
    ):
        bad.write_text(text)
        with pytest.raises(ClassifierError, match=r"cats\.yaml"):
            load_categories_yaml(bad)
    airline, fallback, mapping = load_categories_yaml(
        ROOT / "classifiers" / "airline_categories.yaml"
    )
    assert fallback == "other" and set(mapping.values()) <= {c.name for c in airline}


def test_models_dir_defaults_to_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert user_cache_dir() == tmp_path / "listener" / "models"
    assert ClassifierSettings().models_path == tmp_path / "listener" / "models"
    assert ClassifierSettings(models_dir="/srv/m").models_path == Path("/srv/m")
    resolved = ClassifierSettings(models_dir="m").resolved(tmp_path / "cfg")
    assert resolved.models_path == tmp_path / "cfg" / "m"


NAMES = ["delivery", "billing", "praise", "other"]


def _scores(**kw: float) -> np.ndarray:
    return np.array([kw.get(n, 0.0) for n in NAMES])


def test_decide_unhappy_posts_are_never_praise() -> None:
    s = _scores(delivery=0.5, billing=0.4, praise=0.9, other=0.3)
    assert decide(NAMES, s, True, False, "other") == NAMES.index("delivery")
    s = _scores(delivery=0.2, billing=0.1, praise=0.9, other=0.5)
    assert decide(NAMES, s, True, False, "other") is None  # closest is "other"


def test_decide_posts_that_are_not_unhappy() -> None:
    praise = _scores(praise=PRAISE_MIN + 0.01, delivery=0.3)
    assert NAMES[decide(NAMES, praise, False, True, "other")] == "praise"  # type: ignore[index]
    # positive but not close to praise ("thanks, all sorted"): the fallback
    assert decide(NAMES, _scores(praise=PRAISE_MIN - 0.1), False, True, "other") is None
    # a neutral post clearly about a problem keeps it; a vague one is "other"
    clear = _scores(delivery=PROBLEM_MIN + 0.05, other=0.4)
    assert NAMES[decide(NAMES, clear, False, False, "other")] == "delivery"  # type: ignore[index]
    vague = _scores(delivery=PROBLEM_MIN - 0.05, other=0.2)
    assert decide(NAMES, vague, False, False, "other") is None
    # a neutral post is never praise
    assert decide(NAMES, _scores(praise=0.99), False, False, "other") is None


def test_category_model_uses_prototypes_and_keywords() -> None:
    from classifiers.settings import CategorySpec

    specs = [
        CategorySpec(name="delivery", description="parcel late", keywords=["parcel"]),
        CategorySpec(name="billing", description="charged twice", examples=["bill wrong"]),
        CategorySpec(name="other", description="anything else"),
    ]
    table = {
        "delivery: parcel late": [1.0, 0.0, 0.0],
        "billing: charged twice": [0.0, 1.0, 0.0],
        "bill wrong": [0.0, 1.0, 0.0],
        "other: anything else": [0.0, 0.0, 1.0],
    }
    model = CategoryModel(specs, lambda ts: np.array([table[t] for t in ts], np.float32), "other")
    topic = np.array([[0.7, 0.72, 0.0], [0.0, 1.0, 0.0]], np.float32)
    out = model.assign(["my parcel", "my bill"], topic, [True, True])
    assert [c for c, _ in out] == ["delivery", "billing"]  # the keyword tips the first
    assert all(0.0 <= p <= 1.0 for _, p in out)


def test_config_yaml_offers_use_known_categories() -> None:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    for offer in cfg["recovery"]["offers"]:
        assert set(offer.get("categories", [])) <= set(TWCS_SET), offer["key"]
    for channel in (ROOT / "templates" / "replies").iterdir():
        for t in channel.glob("*.j2"):
            assert t.name.split(".")[0] in {*TWCS_SET, "default"}, t
