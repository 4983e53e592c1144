"""HTTP tests run on SQLite: the adapters are proven on both databases elsewhere
(tests/adapters, tests/test_concurrency.py), and the API layer is the same on both."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gatehouse.authors.migrations import migrate


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    asyncio.run(migrate(url))
    return url
