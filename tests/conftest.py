"""Shared fixtures.

* ``shared_data``: the real data in ``../shared/data`` (fails, with a message,
  when it is not there — it is never copied into the repo).
* ``db_url``: a fresh, migrated database per test.  SQLite by default; set
  ``LISTENER_TEST_DATABASE_URL`` (``.ci/run`` does, for a second pass) to run
  the same tests on PostgreSQL, each test in its own schema.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LISTENER_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use a database get the ``db`` marker: the PostgreSQL pass runs ``-m db``."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "db_url" in names or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"real test data not found at {SHARED_DATA}: clone the project with ../shared beside "
            "it (or set LISTENER_SHARED_DATA)",
            pytrace=False,
        )
    return SHARED_DATA


# ---------------------------------------------------------------------------
# databases

import copy  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

TEST_DATABASE_ENV = "LISTENER_TEST_DATABASE_URL"
PG_URL = os.environ.get(TEST_DATABASE_ENV)


def backend() -> str:
    return "postgresql" if PG_URL else "sqlite"


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL for this test (migrated on first App use).

    SQLite: a file in tmp_path.  PostgreSQL (``LISTENER_TEST_DATABASE_URL``): a
    new schema (``opsfixtures.fresh_pg_schema``), dropped afterwards.
    """
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'listener-test.db'}"
        return
    from opsfixtures import fresh_pg_schema

    with fresh_pg_schema(PG_URL, prefix="t") as url:
        yield url


def base_config(db_url: str) -> dict[str, Any]:
    """A minimal config mapping for tests (the example brand, no sources)."""
    return {
        "brand": {
            "name": "Zephyr Shoes",
            "handles": ["@zephyrshoes"],
            "keywords": ["Zephyr Shoes", "ZephyrShoes", "zephyrshoes.com"],
            "aliases": ["Zephyr"],
            "exclusions": ["zephyr wind", "Zephyr RTOS", "zephyr project"],
            "tag_terms": ["zephyrshoes"],
        },
        "database": {"url": db_url},
        "sources": [],
        "classifier": {"kind": "lexicon"},
        "recovery": {"templates_dir": str(ROOT / "templates")},
        "polling": {"jitter": 0.0},
    }


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@pytest.fixture
def make_settings(db_url: str, tmp_path: Path) -> Callable[..., Any]:
    """``make_settings(overrides)`` → validated Settings on this test's database."""
    from listener.config import settings_from_dict

    def factory(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Any:
        data = _merge(base_config(db_url), overrides or {})
        return settings_from_dict(data, base_dir=ROOT, env=env if env is not None else {})

    return factory


@pytest.fixture
def make_app(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """``make_app(overrides)`` → a migrated App on this test's database (closed afterwards)."""
    from listener.app import App

    apps: list[Any] = []

    def factory(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Any:
        app = App.from_settings(make_settings(overrides, env))
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


#: the stable contract of ``listener queue --json`` (each object has at least these keys)
QUEUE_KEYS = frozenset(
    {
        "id",
        "status",
        "priority",
        "reasons",
        "category",
        "unhappy_score",
        "source",
        "author",
        "text",
        "url",
        "draft",
        "offer",
    }
)

EXAMPLE_SOURCES = [
    {"name": "example-blogs", "type": "feed", "path": "examples/blog.xml", "interval": "15m"},
    {
        "name": "example-social",
        "type": "jsonl",
        "path": "examples/social.jsonl",
        "interval": "5m",
    },
]


@pytest.fixture
def example_app(make_app: Callable[..., Any]) -> Any:
    """An App with the bundled example sources (lexicon classifier, fast)."""
    return make_app({"sources": EXAMPLE_SOURCES})
