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


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"real test data not found at {SHARED_DATA}: clone the project with ../shared beside "
            "it (or set LISTENER_SHARED_DATA)",
            pytrace=False,
        )
    return SHARED_DATA
