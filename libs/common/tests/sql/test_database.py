"""Engines, URLs and reachability of gatehouse.common.sql."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatehouse.common.errors import ConfigurationError
from gatehouse.common.sql import check_reachable, create_engine, normalize_database_url, ping


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("postgresql://u:p@db:5432/app", "postgresql+asyncpg://u:p@db:5432/app"),
        ("postgres://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("postgresql+asyncpg://u@db/app", "postgresql+asyncpg://u@db/app"),
        ("sqlite:///data/app.db", "sqlite+aiosqlite:///data/app.db"),
        ("sqlite+aiosqlite:///data/app.db", "sqlite+aiosqlite:///data/app.db"),
    ],
)
def test_urls_get_the_async_driver(given: str, normalized: str) -> None:
    assert normalize_database_url(given) == normalized


@pytest.mark.parametrize("url", ["mysql://u@db/app", "db.example:5432", "http://db/app"])
def test_other_schemes_are_refused_by_name(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL scheme"):
        normalize_database_url(url)


async def test_a_sqlite_database_gets_its_folder_and_answers(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'folder' / 'app.db'}")
    try:
        await ping(engine)
        async with engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            foreign_keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    finally:
        await engine.dispose()
    assert (tmp_path / "folder" / "app.db").is_file()
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "folder" / "app.db").stat().st_mode & 0o777 == 0o600
    assert (mode, foreign_keys) == ("wal", 1)


async def test_an_unreachable_database_names_the_setting_and_hides_the_password() -> None:
    # Port 1 on the loopback refuses connections at once.
    engine = create_engine("postgresql://gatehouse:s3cret-pw@127.0.0.1:1/app")
    try:
        with pytest.raises(ConfigurationError) as caught:
            await check_reachable(engine, "GATEHOUSE_TEST_DATABASE_URL")
    finally:
        await engine.dispose()
    assert caught.value.setting == "GATEHOUSE_TEST_DATABASE_URL"
    message = str(caught.value)
    assert message.startswith("GATEHOUSE_TEST_DATABASE_URL: cannot reach the database")
    assert "gatehouse:***@127.0.0.1:1/app" in message
    assert "s3cret-pw" not in message


async def test_a_reachable_postgres_database_passes_the_check(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        await check_reachable(engine, "GATEHOUSE_TEST_DATABASE_URL")
    finally:
        await engine.dispose()
