"""HTTP tests run on SQLite: the adapters are proven on both databases elsewhere
(tests/adapters, tests/test_concurrency.py), and the API layer is the same on both."""

from __future__ import annotations

import pytest


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url
