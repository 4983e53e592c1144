"""HTTP tests run on SQLite: the adapters are proven on both databases elsewhere
(tests/adapters, tests/test_concurrency.py), and the API layer is the same on both."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def empty_database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
